import pandas as pd

from quakesnake import io
from quakesnake.runner import logged

with logged(snakemake):
    io.write_table(pd.DataFrame(snakemake.params.stations), snakemake.output[0])

import pandas as pd

from quakesnake import tabular
from quakesnake.runner import logged

with logged(snakemake):
    tabular.write_table(pd.DataFrame(snakemake.params.stations), snakemake.output[0])

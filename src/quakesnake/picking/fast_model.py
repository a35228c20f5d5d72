"""A copy of a SeisBench model rearranged for speed (BatchNorm folded, channels-last 1-D
convolutions), equal to the model up to float rounding; cached per model and dtype."""
from __future__ import annotations

import logging
import weakref
from collections import defaultdict

logger = logging.getLogger(__name__)

def to_float32(value):
    import torch

    if isinstance(value, torch.Tensor):
        return value.float() if value.is_floating_point() else value
    if isinstance(value, (tuple, list)):
        return type(value)(to_float32(v) for v in value)
    return value


_FAST_COPIES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def fast_copy(model, dtype):
    """A copy of ``model`` in ``dtype`` rearranged for speed; its outputs differ from the
    model's by float rounding only (checked when it is built). Cached per model and dtype.

    - Every eval-mode BatchNorm fed by a convolution is folded into it (torch.fx): one
      memory-bound pass less per layer (PhaseNet fp32 -8 %, PhaseNetLight -40 % per window,
      one thread, measured); models fx cannot trace (EQTransformer) keep theirs.
    - Transposed convolutions lose their bias to an addition after them: with a bias, torch
      2.13 runs them in bf16 on a slow generic kernel (PhaseNetLight's decoder: 10-20x slower
      than bias-free, measured).
    - 1-D convolutions run as 2-D ones on channels-last tensors (see :func:`_channels_last_conv1d`).

    Rebuilt when the model's weights, dtype or device change.
    """
    key = (str(model.device), model.dtype, tuple((p.data_ptr(), p._version) for p in model.parameters()))
    copies = _FAST_COPIES.setdefault(model, {})
    if dtype not in copies or copies[dtype][0] != key:
        copies[dtype] = (key, _rearranged(model).to(device=model.device, dtype=dtype).eval())
        logger.info("%s: %s copy for the window pipeline ready", model.name, dtype)
    return copies[dtype][1]


def _channels_last_conv1d(conv):
    """``conv`` run as a 2-D convolution on channels-last tensors, where oneDNN has faster kernels
    for PhaseNet's few channels (per window, one thread: PhaseNet fp32 -18 %, bf16 -13 %;
    PhaseNetLight unchanged; transposed convolutions lose, so they stay). Same numbers up to
    float rounding."""
    import torch
    import torch.nn.functional as F

    class ChannelsLastConv1d(torch.nn.Module):
        def __init__(self, conv):
            super().__init__()
            self.weight = torch.nn.Parameter(
                conv.weight.detach()[:, :, None, :].contiguous(memory_format=torch.channels_last), requires_grad=False
            )
            self.bias = conv.bias
            padding = conv.padding if isinstance(conv.padding, str) else (0, conv.padding[0])
            self.arguments = ((1, conv.stride[0]), padding, (1, conv.dilation[0]), conv.groups)

        def forward(self, x):
            x = x.unsqueeze(2).contiguous(memory_format=torch.channels_last)
            return F.conv2d(x, self.weight, self.bias, *self.arguments).squeeze(2)

    return ChannelsLastConv1d(conv)


def _rearranged(model):
    """fp32 copy of ``model`` with BatchNorm folded, transposed-convolution biases moved after
    them and 1-D convolutions on channels-last tensors."""
    import copy
    import inspect

    import torch
    import torch.fx
    from torch.nn.modules.batchnorm import _BatchNorm
    from torch.nn.modules.conv import _ConvNd, _ConvTransposeNd
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    plain = copy.deepcopy(model).to(device="cpu", dtype=torch.float32).eval()
    plain._forward_pre_hooks.clear()  # the boundary casts of load_model: this copy is cast by its caller
    plain._forward_hooks.clear()
    probe = torch.randn(2, len(model.component_order), model.in_samples, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = to_float32(plain(probe))

    rearranged = copy.deepcopy(plain)
    signature = list(inspect.signature(plain.forward).parameters.values())[1:]
    concrete = {p.name: p.default for p in signature if p.default is not inspect.Parameter.empty}
    try:
        traced = torch.fx.symbolic_trace(rearranged, concrete_args=concrete)
    except Exception as exc:  # fx refuses data-dependent control flow; such a model keeps its BatchNorm
        logger.info("%s: BatchNorm not folded (fx cannot trace the model: %s)", model.name, type(exc).__name__)
    else:
        modules = dict(traced.named_modules())
        calls = defaultdict(int)
        for node in traced.graph.nodes:
            if node.op == "call_module":
                calls[node.target] += 1
        for node in list(traced.graph.nodes):
            source = node.args[0] if node.args else None
            if not (node.op == "call_module" and isinstance(modules[node.target], _BatchNorm)
                    and isinstance(source, torch.fx.Node) and source.op == "call_module"
                    and isinstance(modules[source.target], _ConvNd) and len(source.users) == 1
                    and calls[source.target] == 1 and modules[node.target].running_mean is not None):
                continue
            conv = modules[source.target]
            fused = fuse_conv_bn_eval(conv, modules[node.target], transpose=isinstance(conv, _ConvTransposeNd))
            parent, _, name = source.target.rpartition(".")
            setattr(traced.get_submodule(parent), name, fused)
            node.replace_all_uses_with(source)
            traced.graph.erase_node(node)
        traced.graph.lint()
        traced.delete_all_unused_submodules()
        traced.recompile()
        rearranged = traced

    for module in rearranged.modules():
        if isinstance(module, _ConvTransposeNd) and module.bias is not None:
            bias = module.bias.detach().reshape(-1, *[1] * (module.weight.dim() - 2))
            module.bias = None
            module.register_buffer("bias_after", bias)
            module.register_forward_hook(lambda mod, args, output: output + mod.bias_after)
    for name, module in list(rearranged.named_modules()):
        if type(module) is torch.nn.Conv1d and module.padding_mode == "zeros":
            parent, _, attribute = name.rpartition(".")
            setattr(rearranged.get_submodule(parent), attribute, _channels_last_conv1d(module))

    with torch.no_grad():
        got = to_float32(rearranged(probe))
    pairs = zip(got, expected) if isinstance(got, (tuple, list)) else [(got, expected)]
    error = max(float((a - b).abs().max()) for a, b in pairs)
    if not error < 1e-4:  # a rearrangement must not change the outputs beyond float rounding
        logger.warning("%s: the rearranged copy differs by %.2g; using a plain copy", model.name, error)
        return plain
    return rearranged

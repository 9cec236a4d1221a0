"""npae shapes: every answer of the solver checked against the ops themselves."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import npae.functional as F
from npae import Tensor, models, nn, no_grad
from npae.tools.shape_solver import (
    layers_from_model,
    parse_layers,
    report,
    solve,
    sources,
    tconv_choices,
    unpool_choices,
)

ARTICLE = "conv:16:3:1:1,pool:2,conv:4:3:1:1,pool:2"


def _run(layers, shape):
    """The real ops, layer by layer, on zeros; returns the (C, H, W) after each layer."""
    x = Tensor(np.zeros((1,) + tuple(shape)))
    indices, shapes = [], []
    with no_grad():
        for layer in layers:
            c = x.shape[1] if x.ndim == 4 else None
            if layer.kind == "conv":
                w = Tensor(np.zeros((layer.out, c) + layer.kernel))
                x = F.conv2d(x, w, None, layer.stride, layer.padding, layer.dilation)
            elif layer.kind == "tconv":
                w = Tensor(np.zeros((c, layer.out) + layer.kernel))
                x = F.conv_transpose2d(x, w, None, layer.stride, layer.padding,
                                       layer.output_padding, 1, layer.dilation)
            elif layer.kind == "pool":
                x, idx = F.max_pool2d(x, layer.kernel, layer.stride, layer.padding,
                                      return_indices=True)
                indices.append(idx)
            elif layer.kind == "unpool":
                x = F.max_unpool2d(x, indices.pop(), layer.kernel, layer.stride, layer.padding)
            elif layer.kind == "up":
                x = F.upsample_nearest2d(x, scale_factor=layer.scale)
            elif layer.kind == "flatten":
                x = x.reshape(1, -1)
            elif layer.kind == "linear":
                x = F.linear(x, Tensor(np.zeros((layer.out, x.shape[1]))))
            elif layer.kind == "unflatten":
                x = x.reshape((1,) + layer.shape)
            shapes.append(tuple(x.shape[1:]))
    return shapes


def test_article_stack():
    plan = solve(ARTICLE, (1, 28, 28))
    assert [s.shape for s in plan.steps] == [(16, 28, 28), (16, 14, 14), (4, 14, 14), (4, 7, 7)]
    assert [s.shape for s in plan.steps] == _run(parse_layers(ARTICLE), (1, 28, 28))
    assert plan.steps[1].sources == [[28, 29], [28, 29]]
    assert plan.steps[3].sources == [[14, 15], [14, 15]]
    text = report(plan)
    assert "14 comes from input size 28 or 29" in text
    assert "(padding, output_padding) = (0, 0) turn 7 into 14" in text
    assert "unpool:2:2:0 gives 14 by default" in text


@pytest.mark.parametrize("name", ["linear", "conv-transpose", "conv-upsample", "conv-unpool",
                                  "conv-strided", "denoise"])
def test_model_shapes_match_the_real_model(name):
    layers = layers_from_model(name)
    plan = solve(layers, (1, 28, 28))
    assert [s.shape for s in plan.steps] == _run(layers, (1, 28, 28))
    model = models.create(name)
    with no_grad():
        out = model(Tensor(np.zeros((2, 1, 28, 28), dtype=np.float32)))
    assert tuple(out.shape[1:]) == plan.steps[-1].shape == (1, 28, 28)
    assert all(m.reaches for m in plan.matches)


def test_sequential_models_layer_by_layer():
    """The model's own modules, applied one by one, give the solver's intermediate shapes."""
    model = models.create("denoise")
    x = Tensor(np.zeros((1, 1, 28, 28), dtype=np.float32))
    seen = []
    with no_grad():
        for m in list(model.encoder) + list(model.decoder):
            x = m(x)
            seen.append(tuple(x.shape[1:]))
    assert [s.shape for s in solve(layers_from_model("denoise"), (1, 28, 28)).steps] == seen


@pytest.mark.parametrize("k,s,p", [(2, 2, 0), (3, 2, 1), (3, 3, 0), (2, 1, 0), (3, 2, 0)])
def test_pool_sources_are_exactly_the_sizes_that_pool_to_that_size(k, s, p):
    layer = parse_layers(f"pool:{k}:{s}:{p}")[0]
    for n_out in range(1, 6):
        found = sources(layer, 0, n_out, 0)
        for n in range(1, 20):
            try:
                with no_grad():
                    got = F.max_pool2d(Tensor(np.zeros((1, 1, n, n))), k, s, p).shape[2]
            except ValueError:
                got = None
            assert (got == n_out) == (n in found), (n, n_out, found)


def test_conv_sources_checked_against_conv2d():
    layer = parse_layers("conv:1:3:2:1")[0]
    w = Tensor(np.zeros((1, 1, 3, 3)))
    for n_out in range(1, 6):
        found = sources(layer, 0, n_out, 0)
        assert len(found) == 2  # stride 2: two input sizes per output size
        for n in range(1, 14):
            got = F.conv2d(Tensor(np.zeros((1, 1, n, n))), w, stride=2, padding=1).shape[2]
            assert (got == n_out) == (n in found)


def test_tconv_choices_are_exactly_the_settings_that_reach_the_target():
    for n_in in (2, 3, 4):
        for k in (1, 2, 3, 4):
            for s in (1, 2, 3):
                reached = {}
                for p in range(0, 5):
                    for op_ in range(s):
                        try:
                            y = F.conv_transpose2d(Tensor(np.zeros((1, 1, n_in, n_in))),
                                                   Tensor(np.zeros((1, 1, k, k))), stride=s,
                                                   padding=p, output_padding=op_)
                        except ValueError:
                            continue
                        reached.setdefault(y.shape[2], set()).add((p, op_))
                for target, settings in reached.items():
                    listed = {c for c in tconv_choices(n_in, target, k, s) if c[0] < 5}
                    assert listed == settings, (n_in, k, s, target)


def test_unpool_choices_checked_against_max_unpool2d():
    x = Tensor(np.ones((1, 1, 7, 7)))
    idx = np.zeros((1, 1, 7, 7), dtype=np.int64)
    default, allowed, ok = unpool_choices(7, 15, 2, 2, 0)
    assert default == 14 and allowed == [13, 14, 15] and ok
    for size in range(10, 19):
        try:
            F.max_unpool2d(x, idx, 2, output_size=(size, size))
            works = True
        except ValueError:
            works = False
        assert works == (size in allowed), size


def test_a_decoder_that_misses_its_target_is_named_with_the_fix():
    plan = solve("conv:16:3:2:1,tconv:1:3:2:1", (1, 28, 28))
    assert plan.steps[-1].shape == (1, 27, 27)
    assert plan.matches[0].reaches is False
    text = report(plan)
    assert "target 28x28: this layer does NOT reach it" in text
    assert "(padding, output_padding) = (1, 1) turn 14 into 28" in text
    # the suggested fix works with the real op
    with no_grad():
        y = F.conv_transpose2d(Tensor(np.zeros((1, 16, 14, 14))),
                               Tensor(np.zeros((16, 1, 3, 3))), stride=2, padding=1,
                               output_padding=1)
    assert y.shape[2:] == (28, 28)


def test_unpool_after_a_flooring_pool_needs_output_size():
    text = report(solve("pool:2,unpool:2", (1, 7, 7)))
    assert "output_size=7 picks 7 (allowed: 5..7)" in text
    assert "does NOT reach" in text


def test_non_square_inputs_report_each_axis():
    plan = solve("pool:2", (1, 7, 8))
    assert plan.steps[0].shape == (1, 3, 4)
    text = report(plan)
    assert "height:" in text and "(height)" in text


def test_impossible_layer_quotes_the_formula_with_the_numbers():
    with pytest.raises(ValueError, match=r"layer 2 \(pool:3\): output size 0x0 is not positive"
                                         r".*floor\(\(2 \+ 2\*0 - 1\*\(3-1\) - 1\)/3\) \+ 1 = 0"):
        solve("pool:2,pool:3", (1, 4, 4))


@pytest.mark.parametrize("spec,message", [
    ("pool:x", "kernel must be an int or HxW"),
    ("conv:3", "conv takes 2..5 numbers"),
    ("avgpool:2", "unknown layer 'avgpool:2'"),
    ("", "--layers is empty"),
    ("conv:a:3", "the channel count must be an int"),
])
def test_bad_layer_specs(spec, message):
    with pytest.raises(ValueError, match=message):
        parse_layers(spec)


def test_vae_has_no_layer_stack():
    with pytest.raises(ValueError, match="give its layers with --layers"):
        layers_from_model("vae")


def test_linear_before_flatten_is_refused():
    with pytest.raises(ValueError, match="add flatten before it"):
        solve("linear:10", (1, 4, 4))


def test_unflatten_must_fit():
    with pytest.raises(ValueError, match=r"cannot unflatten \(16,\) into \(1, 3, 3\)"):
        solve("flatten,unflatten:1:3:3", (1, 4, 4))


def test_nn_layers_map_to_specs():
    layers = layers_from_model("conv-strided")
    assert [layer.spec for layer in layers if layer.kind in ("conv", "tconv")] == [
        "conv:16:3:2:1", "conv:32:3:2:1", "tconv:16:3:2:1:1", "tconv:1:3:2:1:1"]
    assert isinstance(models.create("conv-strided").encoder[0], nn.Conv2d)


LAYER = st.one_of(
    st.builds(lambda o, k, s, p: f"conv:{o}:{k}:{s}:{p}", st.integers(1, 3), st.integers(1, 4),
              st.integers(1, 3), st.integers(0, 2)),
    st.builds(lambda k, s: f"pool:{k}:{s}", st.integers(1, 3), st.integers(1, 3)),
    st.builds(lambda o, k, s, p, op_: f"tconv:{o}:{k}:{s}:{p}:{op_}", st.integers(1, 3),
              st.integers(1, 4), st.integers(1, 3), st.integers(0, 1), st.integers(0, 1)),
    st.builds(lambda f: f"up:{f}", st.sampled_from([1, 2, 3])),
)


@given(st.lists(LAYER, min_size=1, max_size=4), st.integers(1, 12), st.integers(1, 12))
def test_random_stacks_match_the_ops(specs, h, w):
    """The solver gives the real ops' shapes, or fails exactly where an op fails."""
    layers = parse_layers(",".join(specs))
    try:
        expected = _run(layers, (1, h, w))
    except ValueError:
        expected = None
    try:
        got = [step.shape for step in solve(layers, (1, h, w)).steps]
    except ValueError:
        got = None
    assert got == expected

"""Objectives: values against hand computations, the algebra, names, strings, batch restriction."""
import pytest
import torch

from featviz.optvis import objectives as O


def _acts(b=3, c=4, h=5, w=6, seed=0):
    return {"conv": torch.randn(b, c, h, w, generator=torch.Generator().manual_seed(seed))}


def test_channel_is_spatial_mean_and_neuron_is_centre():
    acts = _acts()
    torch.testing.assert_close(O.channel("conv", 2)(acts), acts["conv"][:, 2].mean((1, 2)))
    torch.testing.assert_close(O.neuron("conv", 1)(acts), acts["conv"][:, 1, 2, 3])
    torch.testing.assert_close(O.neuron("conv", 1, x=0, y=4)(acts), acts["conv"][:, 1, 4, 0])


def test_direction_with_one_hot_vector_equals_channel():
    acts = _acts()
    torch.testing.assert_close(O.direction("conv", [0, 0, 1, 0])(acts), O.channel("conv", 2)(acts))


def test_algebra_combines_values_and_layers():
    acts = {**_acts(), "fc": torch.randn(3, 10)}
    obj = 2 * O.channel("conv", 0) - O.channel("fc", 3) / 4 + "conv:1"
    expected = 2 * acts["conv"][:, 0].mean((1, 2)) - acts["fc"][:, 3] / 4 + acts["conv"][:, 1].mean((1, 2))
    torch.testing.assert_close(obj(acts), expected)
    assert obj.layers == ("conv", "fc")
    assert obj.name == "2 * channel(conv:0) - channel(fc:3) / 4 + channel(conv:1)"


def test_sum_of_objectives_and_negation():
    acts = _acts()
    total = sum(O.channel("conv", c) for c in range(4))
    torch.testing.assert_close(total(acts), acts["conv"].mean((2, 3)).sum(1))
    torch.testing.assert_close((-O.deepdream("conv"))(acts), -(acts["conv"] ** 2).mean((1, 2, 3)))


def test_batch_restricts_to_one_item():
    acts = _acts()
    out = (O.batch("conv:0", 0) + O.batch("conv:3", 2))(acts)
    expected = torch.stack([acts["conv"][0, 0].mean(), torch.tensor(0.0), acts["conv"][2, 3].mean()])
    torch.testing.assert_close(out, expected)


def test_diversity_summed_is_minus_mean_pairwise_gram_cosine():
    t = _acts()["conv"]
    g = [(x.flatten(1) @ x.flatten(1).T).flatten() for x in t]
    g = [v / v.norm() for v in g]
    pairs = sum(float(g[i] @ g[j]) for i in range(3) for j in range(3) if i != j)
    assert O.diversity("conv")({"conv": t}).sum().item() == pytest.approx(-pairs / 3, rel=1e-5)


def test_total_variation_of_a_hand_made_image():
    x = torch.zeros(1, 3, 2, 2)
    x[..., :, 1] = 1.0  # a vertical edge: every horizontal neighbour pair differs by 1
    assert O.total_variation()({O.INPUT: x}).item() == pytest.approx(1.0)


@pytest.mark.parametrize("bad", ["conv", "conv:x", ":3"])
def test_bad_objective_strings_are_clear_errors(bad):
    with pytest.raises(ValueError, match="layer:channel"):
        O.as_objective(bad)


def test_objective_strings_use_the_one_reference_parser():
    acts = _acts()
    torch.testing.assert_close(O.as_objective("conv:-1")(acts), acts["conv"][:, 3].mean((1, 2)))
    torch.testing.assert_close(O.as_objective(" conv : 2 ")(acts), acts["conv"][:, 2].mean((1, 2)))
    assert O.as_objective("relu#2:1").layers == ("relu#2",)
    assert O.as_objective("relu#1:1").layers == ("relu",)


@pytest.mark.parametrize("several", ["conv:1,3", "conv:0-2"])
def test_objective_string_with_several_channels_says_how_to_render_them(several):
    with pytest.raises(ValueError, match=r"channels; an objective string is one channel.*render_layer"):
        O.as_objective(several)


def test_objective_times_objective_is_a_type_error():
    with pytest.raises(TypeError, match="number"):
        O.channel("conv", 0) * O.channel("conv", 1)


def test_batch_terms_share_one_split_and_give_each_item_its_own_gradient():
    t = torch.rand(3, 4, 2, 2, requires_grad=True)
    obj = sum(O.batch(O.channel("l", c), i) for i, c in enumerate([2, 0, 2]))
    value = obj({"l": t})
    seen, todo = set(), [value.grad_fn]
    while todo:  # every node of the backward graph
        node = todo.pop()
        if node is not None and node not in seen:
            seen.add(node)
            todo += [f for f, _ in node.next_functions]
    assert sum(type(n).__name__.startswith("SplitBackward") for n in seen) == 1
    value.sum().backward()
    want = torch.zeros(3, 4, 2, 2)
    want[0, 2], want[1, 0], want[2, 2] = 0.25, 0.25, 0.25
    assert torch.equal(t.grad, want)

"""Bad shapes and arguments get errors that say what was wrong (quoting the output-size formula)."""
import pytest
import torch

import featviz as fv
from featviz.nn import functional as sf


def test_kernel_larger_than_input_quotes_formula_and_numbers():
    with pytest.raises(ValueError, match=r"floor\(\(L \+ 2p - d\(k-1\) - 1\)/s \+ 1\).*L=4, 2p=2, d=1, k=7"):
        sf.conv2d(torch.rand(1, 3, 4, 4), torch.rand(2, 3, 7, 7), padding=1)


def test_channel_mismatch_says_what_the_weight_needs():
    with pytest.raises(ValueError, match="input has 3 channels.*groups=1 needs C = .* = 4"):
        sf.conv2d(torch.rand(1, 3, 8, 8), torch.rand(2, 4, 3, 3))


def test_wrong_rank_input_is_rejected():
    with pytest.raises(ValueError, match=r"expected input \(B, C, H, W\).*got input \(3, 8, 8\)"):
        sf.conv2d(torch.rand(3, 8, 8), torch.rand(2, 3, 3, 3))


def test_pool_padding_over_half_the_kernel_is_rejected():
    with pytest.raises(ValueError, match="padding 2 for kernel size 3"):
        sf.maxpool2d(torch.rand(1, 1, 8, 8), 3, padding=2)


def test_bad_conv_arguments_are_rejected():
    with pytest.raises(ValueError, match="divisible by groups"):
        fv.nn.Conv2d(6, 4, 3, groups=4)
    with pytest.raises(ValueError, match="kernel_size must be an int or a pair"):
        fv.nn.Conv2d(3, 4, (3, 3, 3))
    with pytest.raises(ValueError, match=r"4-tuple \(left, right, top, bottom\)"):
        fv.nn.Conv2d(3, 4, 3, padding=(1, 2, 3))


def test_batchnorm_rejects_wrong_channel_count():
    with pytest.raises(ValueError, match=r"BatchNorm2d\(4\) expects input \(B, 4, H, W\), got shape \(1, 3"):
        fv.nn.BatchNorm2d(4)(torch.rand(1, 3, 2, 2))


def test_windows_and_output_size_follow_the_lesson():
    assert sf.output_size(28, k=3, s=2, p_before=1, p_after=1) == 14
    x = torch.arange(25.0).reshape(1, 1, 5, 5)
    win = sf.windows2d(x, (2, 2), stride=(2, 2), dilation=(1, 2))   # [h, w, i, j] = x[2h + i, 2w + 2j]
    assert win.shape == (1, 1, 2, 2, 2, 2)
    assert torch.equal(win[0, 0, 1, 0], torch.tensor([[10.0, 12.0], [15.0, 17.0]]))

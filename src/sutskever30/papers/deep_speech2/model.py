"""Deep Speech 2: End-to-End Speech Recognition in English and Mandarin.

Amodei, Anubhai, Battenberg, et al. (Baidu Research), 2015. arXiv:1512.02595.

Idea: one network maps a spectrogram straight to characters, trained with CTC: a 2D
convolutional front end over (frequency, time), a stack of bidirectional recurrent layers
made trainable at depth by sequence-wise batch normalisation, and a softmax over characters.

Key equations (Sec. 3):
    features: log |STFT(audio)|^2 with 20 ms windows, 10 ms hop, normalised per utterance
    conv:     h^l = min(max(B(conv(h^{l-1})), 0), 20)        (clipped ReLU, 2D over freq x time)
    GRU (Sec. 3.4) with sequence-wise BN on the input-to-hidden term only (Sec. 3.2,
    h_t = f(B(W x_t) + U h_{t-1})):
        u_t = B(W x_t)                   # the BN statistics span the minibatch and all frames
        r_t = sigmoid(u_t^r + U_r h_{t-1} + b_r)
        z_t = sigmoid(u_t^z + U_z h_{t-1} + b_z)
        h~_t = tanh(u_t^h + r_t * (U_h h_{t-1} + b_h))
        h_t = (1 - z_t) * h~_t + z_t * h_{t-1}
      run forward and backward in time, outputs concatenated
    output:   p(c_t | x) = softmax(V [h_fwd_t; h_bwd_t]), trained with CTC (see ctc.py)

Deviations from the paper:
- Tiny: 2 conv layers (8 channels), 2 bidirectional GRU layers of 64 units, 0.17M
  parameters, on 8 kHz audio (81 frequency bins, so the conv kernels are halved in
  frequency: 21x11 and 11x5), against up to 3 conv + 7 RNN layers of ~2,000 units at 16 kHz.
- Optimiser: Adam with warm-up and cosine decay, gradient-norm clipping at 10, instead of
  SGD with Nesterov momentum and a per-epoch annealed learning rate.
- No row convolution / lookahead (that serves the unidirectional deployment models), no
  fully connected layer between the last GRU and the softmax.
- Padding is masked everywhere (BN statistics, conv inputs, the backward GRU starts at each
  utterance's own last frame), so a padded batch gives the same outputs as each utterance
  alone (minibatches are also length-bucketed, as the paper's: task.epoch_batches).
- In the GRU, ``z`` gates the old state as in cuDNN's convention ((1 - z) on the candidate);
  the paper writes h_t = (1 - z_t) h_{t-1} + z_t h~_t, the same cell with z and 1 - z
  exchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class DS2Config:
    n_fft: int = 160  # 20 ms window at 8 kHz
    hop: int = 80  # 10 ms hop
    conv_channels: int = 8
    hidden: int = 64
    rnn_layers: int = 2
    batch_norm: bool = True

    def __post_init__(self) -> None:
        for name in ("n_fft", "hop", "conv_channels", "hidden", "rnn_layers"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")


def log_spectrogram(
    audio: torch.Tensor, lengths: torch.Tensor, *, n_fft: int = 160, hop: int = 80
) -> tuple[torch.Tensor, torch.Tensor]:
    """Normalised log power spectrogram of a padded batch.

    audio (B, N) samples, lengths (B,) valid samples → features (B, n_fft // 2 + 1, T) and
    frame counts (B,). Each utterance is normalised per frequency bin over its own valid
    frames; padded frames are 0.
    """
    window = torch.hann_window(n_fft, dtype=audio.dtype, device=audio.device)
    spec = torch.stft(audio, n_fft, hop, window=window, center=False, return_complex=True)
    logp = torch.log(spec.abs().square() + 1e-10)  # (B, F, T)
    frames = torch.div(lengths - n_fft, hop, rounding_mode="floor") + 1  # (B,)
    mask = torch.arange(logp.shape[-1], device=audio.device) < frames[:, None]  # (B, T)
    m = mask[:, None, :].to(logp.dtype)  # (B, 1, T)
    mean = (logp * m).sum(-1, keepdim=True) / frames[:, None, None]
    var = ((logp - mean).square() * m).sum(-1, keepdim=True) / frames[:, None, None]
    return (logp - mean) / (var + 1e-5).sqrt() * m, frames


def length_mask(lengths: torch.Tensor, T: int) -> torch.Tensor:
    """(B, T) bool: frame t of utterance b is real (not padding)."""
    return torch.arange(T, device=lengths.device) < lengths[:, None]


class SequenceBatchNorm(nn.Module):
    """Sequence-wise batch normalisation (Sec. 3.2): per feature, statistics over every real
    frame of every utterance in the minibatch; padded frames are ignored and set to 0.

    x has its features at ``feature_dim`` (e.g. (B, T, C) with -1, or (B, C, F, T) with 1);
    mask is a 0/1 float tensor broadcastable to x that is 1 on real frames. Every other
    dimension (batch, time, frequency) is pooled into the statistics.
    """

    def __init__(
        self, num_features: int, *, feature_dim: int = -1, eps: float = 1e-5, momentum: float = 0.1
    ):
        super().__init__()
        self.feature_dim, self.eps, self.momentum = feature_dim, eps, momentum
        self.weight = nn.Parameter(torch.ones(num_features))  # gamma
        self.bias = nn.Parameter(torch.zeros(num_features))  # beta
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features))

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        d = self.feature_dim % x.dim()
        shape = [1] * x.dim()
        shape[d] = -1  # e.g. (1, 1, C) or (1, C, 1, 1)
        if self.training:
            dims = [i for i in range(x.dim()) if i != d]
            n = mask.sum() * (x.numel() // (mask.numel() * x.shape[d]))  # real positions
            xm = x * mask
            mean = xm.sum(dims) / n
            var = ((xm * x).sum(dims) / n - mean.square()).clamp(min=0)
            with torch.no_grad():
                self.running_mean.lerp_(mean, self.momentum)
                self.running_var.lerp_(var * n / (n - 1).clamp(min=1), self.momentum)
        else:
            mean, var = self.running_mean, self.running_var
        scale = self.weight * (var + self.eps).rsqrt()
        shift = self.bias - mean * scale
        return torch.addcmul(shift.reshape(shape), x, scale.reshape(shape)) * mask


def reverse_padded(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Reverse each sequence of x (B, T, ...) within its own length; padding stays put."""
    T = x.shape[1]
    t = torch.arange(T, device=x.device)
    idx = torch.where(t < lengths[:, None], lengths[:, None] - 1 - t, t)  # (B, T)
    rows = idx + T * torch.arange(x.shape[0], device=x.device)[:, None]  # into (B*T, ...)
    return x.flatten(0, 1).index_select(0, rows.flatten()).view_as(x)


def gru_recurrence(u: torch.Tensor, U: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """The GRU recurrence given the input terms, for D independent directions at once.

    u (D, B, T, 3H): input-to-hidden terms [u^r, u^z, u^h] (already W x_t, batch-normalised);
    U (D, 3H, H): recurrent weights [U_r; U_z; U_h]; b (D, 1, 3H): recurrent biases.
    Returns h (D, B, T, H), starting from h_0 = 0.
    """
    H = U.shape[-1]
    h = u.new_zeros(u.shape[0], u.shape[1], H)  # (D, B, H)
    Ut = U.transpose(1, 2)  # (D, H, 3H)
    u_rz, u_h = u.split([2 * H, H], dim=-1)  # (D, B, T, 2H), (D, B, T, H)
    outs = []
    for u_rz_t, u_h_t in zip(u_rz.unbind(2), u_h.unbind(2), strict=True):  # (D, B, .)
        g_rz, g_h = torch.baddbmm(b, h, Ut).split([2 * H, H], -1)  # U h_{t-1} + b
        r, z = torch.sigmoid(u_rz_t + g_rz).chunk(2, -1)
        h_cand = torch.tanh(torch.addcmul(u_h_t, r, g_h))
        h = torch.lerp(h_cand, h, z)  # (1 - z) h~ + z h
        outs.append(h)
    return torch.stack(outs, 2)


class BatchNormBiGRU(nn.Module):
    """One bidirectional GRU layer with sequence-wise BN on W x_t (Sec. 3.2).

    x (B, T, input_size), lengths (B,) → (B, T, 2 * hidden), padded frames 0.
    """

    def __init__(self, *, input_size: int, hidden: int, batch_norm: bool = True):
        super().__init__()
        self.hidden = hidden
        # Both directions' W stacked: (6H, input_size). With BN, beta replaces W's bias.
        self.W = nn.Linear(input_size, 2 * 3 * hidden, bias=not batch_norm)
        self.bn = SequenceBatchNorm(2 * 3 * hidden) if batch_norm else None
        bound = hidden**-0.5
        self.U = nn.Parameter(torch.empty(2, 3 * hidden, hidden).uniform_(-bound, bound))
        self.b = nn.Parameter(torch.zeros(2, 1, 3 * hidden))

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        mask = length_mask(lengths, x.shape[1])  # (B, T)
        u = self.W(x)  # (B, T, 6H)
        if self.bn is not None:
            u = self.bn(u, mask[..., None].to(u.dtype))
        u_fwd, u_bwd = u.split(3 * self.hidden, dim=-1)  # (B, T, 3H) each
        u = torch.stack([u_fwd, reverse_padded(u_bwd, lengths)])  # (2, B, T, 3H)
        h_fwd, h_bwd = gru_recurrence(u, self.U, self.b)  # (B, T, H) each
        h = torch.cat([h_fwd, reverse_padded(h_bwd, lengths)], dim=-1)  # (B, T, 2H)
        return h * mask[..., None].to(h.dtype)


class ConvBlock(nn.Module):
    """2D convolution over (frequency, time) + sequence-wise BN + clipped ReLU (Sec. 3.5)."""

    def __init__(
        self,
        *,
        c_in: int,
        c_out: int,
        kernel: tuple[int, int],
        stride: tuple[int, int],
        batch_norm: bool = True,
    ):
        super().__init__()
        self.kernel, self.stride = kernel, stride
        padding = (kernel[0] // 2, kernel[1] // 2)
        self.conv = nn.Conv2d(c_in, c_out, kernel, stride, padding, bias=not batch_norm)
        self.bn = SequenceBatchNorm(c_out, feature_dim=1) if batch_norm else None

    def out_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        k, s = self.kernel[1], self.stride[1]
        return torch.div(lengths + 2 * (k // 2) - k, s, rounding_mode="floor") + 1

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x (B, C, F, T) with padded frames 0 → (B, C', F', T'), new lengths."""
        y = self.conv(x)  # (B, C', F', T')
        lengths = self.out_lengths(lengths)
        mask = length_mask(lengths, y.shape[-1])[:, None, None, :].to(y.dtype)  # (B, 1, 1, T')
        # Zero the padding (BN's output is masked already) so the next layer sees what a lone
        # utterance's zero padding is; the clipped ReLU keeps zeros.
        y = self.bn(y, mask) if self.bn is not None else y * mask
        return F.hardtanh(y, 0.0, 20.0), lengths  # min(max(y, 0), 20)


class DeepSpeech2(nn.Module):
    """spectrogram (B, F, T), lengths (B,) → log-probabilities (B, T', vocab), lengths (T',)."""

    def __init__(self, *, n_freq: int, vocab: int, cfg: DS2Config):
        super().__init__()
        C, bn = cfg.conv_channels, cfg.batch_norm
        # Time is downsampled by 2 in the first layer, frequency by 2 in both (Sec. 3.5).
        self.convs = nn.ModuleList(
            [
                ConvBlock(c_in=1, c_out=C, kernel=(21, 11), stride=(2, 2), batch_norm=bn),
                ConvBlock(c_in=C, c_out=C, kernel=(11, 5), stride=(2, 1), batch_norm=bn),
            ]
        )
        f = n_freq
        for conv in self.convs:
            f = (f + 2 * (conv.kernel[0] // 2) - conv.kernel[0]) // conv.stride[0] + 1
        sizes = [C * f] + [2 * cfg.hidden] * cfg.rnn_layers
        self.rnns = nn.ModuleList(
            [
                BatchNormBiGRU(input_size=sizes[i], hidden=cfg.hidden, batch_norm=bn)
                for i in range(cfg.rnn_layers)
            ]
        )
        self.out = nn.Linear(2 * cfg.hidden, vocab)

    def forward(
        self, spec: torch.Tensor, lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        x = spec[:, None]  # (B, 1, F, T)
        for conv in self.convs:
            x, lengths = conv(x, lengths)
        B, C, Fq, T = x.shape
        x = x.permute(0, 3, 1, 2).reshape(B, T, C * Fq)  # (B, T, C*F)
        for rnn in self.rnns:
            x = rnn(x, lengths)
        return F.log_softmax(self.out(x), dim=-1), lengths  # (B, T, vocab)

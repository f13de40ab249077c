"""Wav2Lip generator (Prajwal et al. 2020), its compact student from Nota's compression
framework (Kim et al. 2023), and a ladder between them.

All are one definition with two knobs: ``width_div`` divides every channel width and
``residual`` keeps or removes the 28 residual blocks (10 face encoder, 7 audio encoder,
11 decoder). ``width_div=1, residual=True`` is Wav2Lip (36,298,035 parameters);
``width_div=4, residual=False`` is nota-wav2lip (1,258,143). Module names equal the
official definitions, so official checkpoints load unchanged.
"""
import torch
from torch import nn

from harness import register_variant

from .blocks import Conv2d, Conv2dTranspose, stage

# (cout, kernel, stride, padding, residual blocks) at full width.
FACE_ENCODER = [(16, 7, 1, 3, 0), (32, 3, 2, 1, 2), (64, 3, 2, 1, 3), (128, 3, 2, 1, 2),
                (256, 3, 2, 1, 2), (512, 3, 2, 1, 1)]
AUDIO_ENCODER = [(32, 3, 1, 1, 2), (64, 3, (3, 1), 1, 2), (128, 3, 3, 1, 2),
                 (256, 3, (3, 2), 1, 1), (512, 3, 1, 0, 0)]
# (cout, kernel, stride, padding, output_padding, residual blocks); each input is the
# previous decoder output concatenated with the matching face-encoder feature.
DECODER = [(512, 3, 1, 0, 0, 1), (512, 3, 2, 1, 1, 2), (384, 3, 2, 1, 1, 2),
           (256, 3, 2, 1, 1, 2), (128, 3, 2, 1, 1, 2), (64, 3, 2, 1, 1, 2)]
OUTPUT_HIDDEN = 32


class Wav2LipGenerator(nn.Module):
    """Masked face + reference frame (6x96x96) and a mel window (1x80x16) -> face 3x96x96.

    Accepts single frames (B, 6, 96, 96) with (B, 1, 80, 16), or windows
    (B, 6, T, 96, 96) with (B, T, 1, 80, 16), returning (B, 3, T, 96, 96)."""

    def __init__(self, width_div: int = 1, residual: bool = True):
        super().__init__()
        w = lambda c: c // width_div  # noqa: E731
        keep = lambda n: n if residual else 0  # noqa: E731

        face, cin, face_widths = [], 6, []
        for cout, k, s, p, n in FACE_ENCODER:
            face.append(nn.Sequential(*stage(cin, w(cout), k, s, p, keep(n))))
            cin = w(cout)
            face_widths.append(cin)
        face.append(nn.Sequential(Conv2d(cin, cin, 3, 1, 0), Conv2d(cin, cin, 1, 1, 0)))
        face_widths.append(cin)
        self.face_encoder_blocks = nn.ModuleList(face)

        audio, cin = [], 1
        for cout, k, s, p, n in AUDIO_ENCODER:
            audio += stage(cin, w(cout), k, s, p, keep(n))
            cin = w(cout)
        audio.append(Conv2d(cin, cin, 1, 1, 0))
        self.audio_encoder = nn.Sequential(*audio)

        decoder = [nn.Sequential(Conv2d(cin, cin, 1, 1, 0))]
        skips = list(reversed(face_widths))
        for (cout, k, s, p, op, n), skip in zip(DECODER, skips):
            layers = [Conv2dTranspose(cin + skip, w(cout), k, s, p, op)]
            layers += [Conv2d(w(cout), w(cout), 3, 1, 1, residual=True) for _ in range(keep(n))]
            decoder.append(nn.Sequential(*layers))
            cin = w(cout)
        self.face_decoder_blocks = nn.ModuleList(decoder)

        hidden = w(OUTPUT_HIDDEN)
        self.output_block = nn.Sequential(Conv2d(cin + skips[-1], hidden, 3, 1, 1),
                                          nn.Conv2d(hidden, 3, 1, 1, 0), nn.Sigmoid())

    def forward(self, audio_sequences: torch.Tensor, face_sequences: torch.Tensor) -> torch.Tensor:
        x, f = to_frames(audio_sequences, face_sequences)
        x = self.audio_encoder(x)
        feats = []
        for block in self.face_encoder_blocks:
            f = block(f)
            feats.append(f)
        for block in self.face_decoder_blocks:
            x = torch.cat((block(x), feats.pop()), dim=1)
        x = self.output_block(x)
        return to_windows(x, face_sequences)


# Windowing branches on input shapes, which graph capture (torch.fx, for quantization)
# cannot trace; as wrapped functions they stay opaque calls in a traced graph.
@torch.fx.wrap
def to_frames(audio_sequences: torch.Tensor, face_sequences: torch.Tensor):
    """(B, T, 1, 80, 16) + (B, 6, T, 96, 96) windows -> B*T frames; frames pass through."""
    if face_sequences.dim() <= 4:
        return audio_sequences, face_sequences
    b, t = face_sequences.shape[0], face_sequences.shape[2]
    # time-major flattening (frame t of every clip, then t+1), as the official code
    audio = audio_sequences.transpose(0, 1).reshape(b * t, *audio_sequences.shape[2:])
    c, h, wd = face_sequences.shape[1], face_sequences.shape[3], face_sequences.shape[4]
    return audio, face_sequences.permute(2, 0, 1, 3, 4).reshape(b * t, c, h, wd)


@torch.fx.wrap
def to_windows(x: torch.Tensor, face_sequences: torch.Tensor) -> torch.Tensor:
    if face_sequences.dim() <= 4:
        return x
    b, t = face_sequences.shape[0], face_sequences.shape[2]
    return x.reshape(t, b, *x.shape[1:]).permute(1, 2, 0, 3, 4)


_LADDER = [
    # name, role, parent, width_div, residual, description
    ("wav2lip", "teacher", None, 1, True,
     "Wav2Lip generator, official definition (Prajwal et al. 2020)"),
    ("wav2lip-w2", "student", "wav2lip", 2, True, "Wav2Lip, residual blocks kept, widths / 2"),
    ("wav2lip-w4", "student", "wav2lip", 4, True, "Wav2Lip, residual blocks kept, widths / 4"),
    ("wav2lip-nores", "student", "wav2lip", 1, False,
     "Wav2Lip, all 28 residual blocks removed, full widths"),
    ("wav2lip-nores-w2", "student", "wav2lip", 2, False,
     "Wav2Lip, residual blocks removed, widths / 2"),
    ("nota-wav2lip", "student", "wav2lip", 4, False,
     "Nota compact Wav2Lip: residual blocks removed, widths / 4 (Kim et al. 2023)"),
]

for _name, _role, _parent, _div, _res, _desc in _LADDER:
    register_variant(_name, family="lipsync", role=_role, parent=_parent, description=_desc)(
        lambda d=_div, r=_res: Wav2LipGenerator(width_div=d, residual=r))

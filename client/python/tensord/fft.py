"""tensord.fft: torch.fft's functions, computed in the daemon (FFTW; see docs/FFT.md).

    td.fft.fft(x, n=None, dim=-1, norm=None), ifft, rfft, irfft, hfft, ihfft,
    fft2/ifft2/rfft2/irfft2(x, s=None, dim=None, norm=None), fftn, ifftn, rfftn, irfftn,
    fftfreq(n, d=1.0), rfftfreq, fftshift(x, dim=None), ifftshift.
"""
from ._namespace import family_getattr

__getattr__, __dir__ = family_getattr(__name__, [
    "fft", "ifft", "rfft", "irfft", "hfft", "ihfft", "fft2", "ifft2", "rfft2", "irfft2",
    "fftn", "ifftn", "rfftn", "irfftn", "fftfreq", "rfftfreq", "fftshift", "ifftshift"])

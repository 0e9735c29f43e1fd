"""Rewrites the picture size an H.264 stream's sequence parameter set declares.

The slices still describe the small picture they were encoded at: a file of a few hundred bytes
then declares a picture of any size, the way a hostile upload can.
"""
from __future__ import annotations

START = b"\x00\x00\x00\x01"


class _Bits:
    def __init__(self, data: bytes) -> None:
        self.bits = "".join(f"{b:08b}" for b in data)
        self.pos = 0

    def u(self, n: int) -> int:
        value = int(self.bits[self.pos:self.pos + n], 2)
        self.pos += n
        return value

    def ue(self) -> int:
        zeros = 0
        while self.bits[self.pos + zeros] == "0":
            zeros += 1
        value = int(self.bits[self.pos + zeros:self.pos + 2 * zeros + 1], 2) - 1
        self.pos += 2 * zeros + 1
        return value


def _ue(value: int) -> str:
    b = f"{value + 1:b}"
    return "0" * (len(b) - 1) + b


def _escape(rbsp: bytes) -> bytes:
    out, zeros = bytearray(), 0
    for b in rbsp:
        if zeros >= 2 and b <= 3:
            out.append(3)
            zeros = 0
        out.append(b)
        zeros = zeros + 1 if b == 0 else 0
    return bytes(out)


def _resize_sps(nal: bytes, width: int, height: int) -> bytes:
    r = _Bits(nal[1:].replace(b"\x00\x00\x03", b"\x00\x00"))
    profile = r.u(8)
    assert profile in (66, 77), "a baseline or main profile SPS is expected (no chroma or scaling fields)"
    r.u(16)       # constraint flags, level
    r.ue()        # seq_parameter_set_id
    r.ue()        # log2_max_frame_num_minus4
    poc_type = r.ue()
    assert poc_type in (0, 2)
    if poc_type == 0:
        r.ue()    # log2_max_pic_order_cnt_lsb_minus4
    r.ue()        # max_num_ref_frames
    r.u(1)        # gaps_in_frame_num_value_allowed_flag
    start = r.pos
    r.ue()        # pic_width_in_mbs_minus1
    r.ue()        # pic_height_in_map_units_minus1
    bits = r.bits[:start] + _ue(width // 16 - 1) + _ue(height // 16 - 1) + r.bits[r.pos:]
    bits = bits.rstrip("0")[:-1] + "1"  # the stop bit moves with the fields before it
    bits += "0" * (-len(bits) % 8)
    return nal[:1] + _escape(bytes(int(bits[i:i + 8], 2) for i in range(0, len(bits), 8)))


def declare_size(annexb: bytes, width: int, height: int) -> bytes:
    """The Annex B stream with every SPS declaring `width`x`height` (multiples of 16)."""
    nals = annexb.split(START)
    return START.join(_resize_sps(n, width, height) if n and n[0] & 0x1F == 7 else n for n in nals)

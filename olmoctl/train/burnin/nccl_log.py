"""What NCCL (or RCCL) says it used, read from its own debug output (NCCL_DEBUG=INFO,
NCCL_DEBUG_SUBSYS=INIT,NET, written to NCCL_DEBUG_FILE): the network transport and the
NICs. `olmoctl doctor`'s all-reduce runs with it on (issue 22 items 3, 4): when the OFI
plugin or the IB transport does not load, NCCL says `Using network Socket` and goes on over
TCP; a multi-node check that did so fails. Pure: text in, facts out (no torch).

Lines it reads (NCCL's init.cc / net.cc and the plugins' own INFO lines; NCCL user guide,
"Environment Variables", NCCL_DEBUG and NCCL_DEBUG_FILE):
    host:123:456 [0] NCCL INFO Using network IB            (or Socket, AWS Libfabric, ...)
    host:123:456 [0] NCCL INFO NET/IB : Using [0]mlx5_0:1/IB [1]mlx5_3:1/IB ; OOB ib0:10.0.0.1<0>
    host:123:456 [0] NCCL INFO NET/Socket : Using [0]eth0:10.0.0.1<0>
    host:123:456 [0] NCCL INFO NET/OFI Selected provider is cxi, fabric is cxi (found 4 nics)
    host:123:456 [0] NCCL INFO Channel 00/0 : 0[0] -> 8[0] [send] via NET/IB/3/GDRDMA
"""

from __future__ import annotations

import re
from dataclasses import dataclass

SOCKET = "Socket"  # NCCL's internal TCP transport: the crawl
_NETWORK = re.compile(r"NCCL INFO Using network (.+?)\s*$")
_DEVICES = re.compile(r"NCCL INFO NET/(IB|Socket) : Using (.+?)\s*(?:; OOB .*)?$")
_DEVICE = re.compile(r"\[(\d+)\]([^\s\[]+)")
_OFI = re.compile(r"NET/OFI Selected [Pp]rovider is ([\w;-]+).*?found (\d+) nics?")
_VIA = re.compile(r"via NET/(?:IB|Socket)/(\d+)")


@dataclass(frozen=True)
class NcclUse:
    network: str = ""  # "" when NCCL said nothing (not initialised, or no debug output)
    devices: tuple[str, ...] = ()  # the NICs NCCL found, as it names them (mlx5_0:1/IB)
    used: tuple[str, ...] = ()  # of those, the ones this rank's channels went through

    @property
    def socket(self) -> bool:
        return self.network == SOCKET

    def text(self) -> str:
        """e.g. 'IB via mlx5_0:1/IB, mlx5_3:1/IB' or 'AWS Libfabric (cxi, 4 nics)'."""
        nics = self.used or self.devices
        if not nics:
            return self.network
        joiner = " " if nics[0].startswith("(") else " via "
        return f"{self.network}{joiner}{', '.join(nics)}"


def parse(text: str) -> NcclUse:
    network = ""
    devices: dict[int, str] = {}
    ofi: tuple[str, ...] = ()
    via: list[int] = []
    for line in text.splitlines():
        if m := _NETWORK.search(line):
            network = network or m.group(1)
        elif m := _DEVICES.search(line):
            devices = devices or {int(i): name for i, name in _DEVICE.findall(m.group(2))}
        elif m := _OFI.search(line):
            ofi = ofi or (f"({m.group(1)}, {m.group(2)} nics)",)
        elif (m := _VIA.search(line)) and int(m.group(1)) not in via:
            via.append(int(m.group(1)))
    used = tuple(devices[i] for i in sorted(via) if i in devices)
    return NcclUse(network, ofi or tuple(devices[i] for i in sorted(devices)), used)

"""Wire protocols: packet framing, checksums and instructions as pure functions of bytes.

`dynamixel` (Protocol 2.0) and `feetech` (SCS/STS) share one contract: builders return
the bytes of an instruction packet; `find_packet(buffer) -> (Packet | None, consumed)`
parses a stream; `decode(data)` parses exactly one packet; `decode_status(packet)` turns
a reply into a `Status`.
"""

from firmware_bridge.protocol.packet import Packet, Status

__all__ = ["Packet", "Status"]

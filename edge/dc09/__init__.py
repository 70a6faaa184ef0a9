"""SIA DC-09 (ANSI/SIA DC-09): shared by the station's bridge and the box's DC-09 route.

:mod:`.codec` (pure encoder/decoder, CRC, AES), :mod:`.messages` (what an event says
in SIA-DCS or ADM-CID), :mod:`.link` (to a receiver: ACK, resend, clock correction).
"""

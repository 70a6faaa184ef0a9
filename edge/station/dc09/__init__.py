"""SIA DC-09 bridge: every stored event to an alarm receiver over TCP.

:mod:`.codec` (pure encoder/decoder), :mod:`.messages` (what an event says
in SIA-DCS or ADM-CID), :mod:`.link` (TCP: ACK, resend, clock correction),
:mod:`.bridge` (the store's events in order, NULL supervision messages).
"""

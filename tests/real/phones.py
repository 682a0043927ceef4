"""The outside world of the PBX under test, as a second real Asterisk speaking SIP on loopback.

- Seat phones: one PJSIP account per seat the tests use, registering to the PBX with the
  password ``docker/gen_seats.py`` generated (digest auth, as a desk phone would), calling from
  127.0.0.1 (``*71``/``*72``) and answering the PBX's calls: at once, after ``SLOW_RING_S``
  (``SLOW_SEAT``) or never (``DEAD_SEAT``). A seat that answered talks until the test hangs up
  its channel here (the phone's hang-up key).
- The carrier trunk, on 127.0.0.2 (the PBX knows it by that source address): places citizens'
  calls to the hotline and the legacy numbers (``Originate PJSIP/<number>@pbx``), and answers what
  the PBX sends it (110/119/120/122, citizens called back).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from tests.real.asterisk import Instance, Package

SLOW_SEAT = "1002"
DEAD_SEAT = "1003"
SLOW_RING_S = 6


class Phones(Instance):
    def __init__(
        self,
        package: Package,
        root: Path,
        *,
        ami_port: int,
        ami_secret: str,
        seat_port: int,
        carrier_port: int,
        rtp: tuple[int, int],
        pbx_sip: str,
        passwords: Mapping[str, str],
    ) -> None:
        super().__init__("phones", package, root, ami_port)
        self.ami_secret = ami_secret
        self.write("asterisk.conf", self.directories() + "[options]\nverbose = 3\ntransmit_silence = yes\n")
        self.write(
            "modules.conf",
            "[modules]\nautoload = yes\n"
            + "".join(
                f"noload => {m}.so\n"
                for m in [
                    "chan_iax2",
                    "chan_unistim",
                    "pbx_dundi",
                    "res_phoneprov",
                    "res_pjsip_phoneprov_provider",
                    "res_hep",
                    "res_hep_pjsip",
                    "res_hep_rtcp",
                    "cdr_csv",
                    "cdr_manager",
                    "cel_manager",
                    "res_parking",
                ]
            ),
        )
        self.write("logger.conf", "[general]\n[logfiles]\nfull.log => notice,warning,error,verbose(3)\n")
        self.write(
            "manager.conf",
            f"[general]\nenabled = yes\nwebenabled = no\nbindaddr = 127.0.0.1\nport = {ami_port}\n\n"
            f"[phones]\nsecret = {ami_secret}\ndeny = 0.0.0.0/0.0.0.0\n"
            "permit = 127.0.0.1/255.255.255.255\nread = all\nwrite = all\n",
        )
        self.write("rtp.conf", f"[general]\nrtpstart = {rtp[0]}\nrtpend = {rtp[1]}\n")
        self.write("musiconhold.conf", "[general]\n[default]\nmode = files\ndirectory = moh\n")
        self.write("pjsip.conf", _pjsip(seat_port, carrier_port, pbx_sip, passwords))
        self.write("extensions.conf", _extensions())


def _pjsip(seat_port: int, carrier_port: int, pbx_sip: str, passwords: Mapping[str, str]) -> str:
    common = "disallow = all\nallow = alaw\nallow = ulaw\ndirect_media = no\ndtmf_mode = rfc4733\n"
    text = (
        "[global]\ntype = global\nuser_agent = hotline-test-phones\n\n"
        f"[transport-seats]\ntype = transport\nprotocol = udp\nbind = 127.0.0.1:{seat_port}\n\n"
        f"[transport-carrier]\ntype = transport\nprotocol = udp\nbind = 127.0.0.2:{carrier_port}\n\n"
        "; the PBX as the carrier sees it: calls in from 127.0.0.2, the PBX's calls to it answered\n"
        f"[pbx]\ntype = endpoint\ntransport = transport-carrier\ncontext = from-pbx\naors = pbx\n{common}\n"
        f"[pbx]\ntype = aor\ncontact = sip:{pbx_sip}\n\n"
        "[pbx]\ntype = identify\nendpoint = pbx\nmatch = 127.0.0.1\n\n"
    )
    for ext, password in sorted(passwords.items()):
        text += (
            f"; seat phone {ext}\n"
            f"[seat-{ext}]\ntype = endpoint\ntransport = transport-seats\ncontext = from-pbx\n"
            f"aors = seat-{ext}\noutbound_auth = seat-{ext}\nfrom_user = {ext}\n{common}\n"
            f"[seat-{ext}]\ntype = aor\ncontact = sip:{pbx_sip}\n\n"
            f"[seat-{ext}]\ntype = auth\nauth_type = userpass\nusername = {ext}\npassword = {password}\n\n"
            f"[seat-{ext}-reg]\ntype = registration\ntransport = transport-seats\noutbound_auth = seat-{ext}\n"
            f"server_uri = sip:{pbx_sip}\nclient_uri = sip:{ext}@{pbx_sip}\ncontact_user = {ext}\n"
            "retry_interval = 2\nforbidden_retry_interval = 2\nmax_retries = 1000\nexpiration = 300\n\n"
        )
    return text


def _extensions() -> str:
    return f"""[general]
static = yes
writeprotect = yes

; What the PBX sends here: seats' phones ring, 110/119/120/122 and citizens called back answer.
[from-pbx]
exten => {SLOW_SEAT},1,Ringing()
 same => n,Wait({SLOW_RING_S})
 same => n,Answer()
 same => n,Echo()
exten => {DEAD_SEAT},1,Ringing()
 same => n,Wait(3600)
exten => _X.,1,Answer()
 same => n,Echo()

; A citizen's end of a call this side placed: listens until the test hangs up.
[citizen]
exten => s,1,Wait(3600)
"""

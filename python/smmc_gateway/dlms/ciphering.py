"""The ciphering context of one association (suite 0): glo-/ded- ciphering of
requests, deciphering and replay checks of responses, HLS-GMAC f(StoC)/f(CtoS).

Keys stay in this object; its repr never shows them. Every outgoing counter
comes from the :class:`~smmc_gateway.dlms.ic_store.InvocationCounterStore`
(reserved on disk before use); every incoming counter must increase, and is
recorded only from a response whose tag was checked (security control with
the authentication bit): an encryption-only response proves nothing, so its
counter is compared but never becomes the high-water mark. A meter's counter
hint (:meth:`CipherContext.follow_hint`) is followed tentatively and
:meth:`CipherContext.confirm` persists it once an authenticated answer came
(see :mod:`smmc_gateway.dlms.ic_store`).
"""

from __future__ import annotations

from smmc_gateway import _core
from smmc_gateway.dlms.association import Security
from smmc_gateway.dlms.errors import ProtocolError, SecurityFailure
from smmc_gateway.dlms.ic_store import MAX_COUNTER_JUMP, InvocationCounterStore, memory_store

# Tags of the ded- ciphered xDLMS APDUs (Green Book, table of xDLMS APDU tags)
# and of general-ded-ciphering; the glo- ones use the global key.
# glo-/ded- initiate-request 0x21/0x41, initiate-response 0x28/0x48,
# confirmed-service-error 0x2E/0x4E, general-glo/ded-ciphering 0xDB/0xDC.
_DEDICATED_TAGS = frozenset(range(0xD0, 0xD8)) | {0x41, 0x48, 0x4E, 0xDC}
_CIPHERED_TAGS = frozenset(range(0xC8, 0xD8)) | {0x21, 0x28, 0x2E, 0x41, 0x48, 0x4E, 0xDB, 0xDC}
_AUTHENTICATED = 0x10  # security control bit: the APDU carries a GCM tag


class CipherContext:
    """Suite 0 state of one association."""

    def __init__(self, security: Security, meter_id: str) -> None:
        if security.ek is None or security.ak is None:
            raise ValueError("ciphering needs ek and ak")
        self.security = security
        self.system_title = security.system_title
        self._ek = security.ek
        self._ak = security.ak
        self._dedicated: bytes | None = security.new_dedicated_key()
        self.server_system_title: bytes | None = None
        self.store: InvocationCounterStore = security.ic_store or memory_store()
        self.scope = security.ic_scope or meter_id or security.system_title.hex()
        self.sc = security.security_control

    def __repr__(self) -> str:
        return f"CipherContext(scope={self.scope!r})"

    @property
    def dedicated_key(self) -> bytes | None:
        return self._dedicated

    def drop_dedicated_key(self) -> None:
        """The server did not accept a dedicated key (or it is not used): glo- only."""
        self._dedicated = None

    def next_counter(self) -> int:
        return self.store.next(self.scope)

    def follow_hint(self, counter: int, max_jump: int = MAX_COUNTER_JUMP) -> bool:
        """The meter (unauthenticated) says it expects ``counter``: see
        :meth:`InvocationCounterStore.hint` (False: ignored; SecurityFailure:
        too far ahead)."""
        return self.store.hint(self.scope, counter, max_jump)

    def confirm(self, counter: int) -> None:
        """The request sent with ``counter`` got an authenticated answer."""
        self.store.confirm(self.scope, counter)

    def cipher_initiate(self, initiate_request: bytes, counter: int | None = None) -> bytes:
        """The glo-initiate-request (always global key, as the Green Book requires)."""
        return _core.cipher_apdu(
            initiate_request,
            security_control=self.sc,
            system_title=self.system_title,
            invocation_counter=self.next_counter() if counter is None else counter,
            ek=self._ek,
            ak=self._ak,
        )

    def cipher(self, apdu: bytes, counter: int | None = None) -> bytes:
        """A request to its glo- (or ded-, with a dedicated key) ciphered form
        (``counter``: one taken earlier with :meth:`next_counter`)."""
        dedicated = self._dedicated is not None
        return _core.cipher_apdu(
            apdu,
            security_control=self.sc,
            system_title=self.system_title,
            invocation_counter=self.next_counter() if counter is None else counter,
            ek=self._dedicated if self._dedicated is not None else self._ek,
            ak=self._ak,
            dedicated=dedicated,
        )

    @staticmethod
    def is_ciphered(apdu: bytes) -> bool:
        return bool(apdu) and apdu[0] in _CIPHERED_TAGS

    def decipher(self, data: bytes) -> bytes:
        """A ciphered response to its plain APDU; checks the tag, the required
        protection (the association's security control) and that the
        invocation counter increased."""
        return self.decipher_answer(data)[0]

    def decipher_answer(self, data: bytes) -> tuple[bytes, bool]:
        """As :meth:`decipher`, with whether the response was authenticated
        (its tag checked): only then is its counter recorded."""
        if not data:
            raise ProtocolError("empty APDU where a ciphered response was expected")
        if self.server_system_title is None and data[0] not in (0xDB, 0xDC):
            raise SecurityFailure(
                "ciphered response but the AARE carried no server system title to decipher it"
            )
        key = self._ek
        if data[0] in _DEDICATED_TAGS:
            if self._dedicated is None:
                raise SecurityFailure("ded-ciphered response but no dedicated key was agreed")
            key = self._dedicated
        try:
            plain, sc, counter, sender = _core.decipher_apdu(
                data,
                system_title=self.server_system_title,
                ek=key,
                ak=self._ak,
                required_protection=self.sc,
            )
        except _core.AuthenticationError as exc:
            raise SecurityFailure(f"response failed authentication (wrong keys?): {exc}") from exc
        except _core.SecurityError as exc:
            raise SecurityFailure(f"response refused by the security policy: {exc}") from exc
        if self.server_system_title is None:
            self.server_system_title = sender  # general-glo-ciphering names its sender
        if sender != self.server_system_title:
            raise SecurityFailure(
                f"response from system title {sender.hex()}, expected "
                f"{self.server_system_title.hex()}"
            )
        authenticated = bool(sc & _AUTHENTICATED)
        if authenticated:
            self.store.check_incoming(self.scope, self.server_system_title, counter)
        else:
            last = self.store.last_incoming(self.scope, self.server_system_title)
            if last is not None and counter <= last:
                raise SecurityFailure(
                    f"replayed invocation counter {counter} from "
                    f"{self.server_system_title.hex()} (last seen {last})"
                )
        return plain, authenticated

    def f_stoc(self, stoc: bytes, counter: int) -> bytes:
        """Our reply to the server's challenge: SC 0x10 || IC || GMAC tag."""
        return _core.hls_gmac(0x10, self.system_title, counter, self._ek, self._ak, stoc)

    def verify_f_ctos(self, ctos: bytes, response: bytes) -> None:
        """Check the server's f(CtoS); raises SecurityFailure."""
        if self.server_system_title is None:
            raise SecurityFailure("the AARE carried no server system title (needed for HLS-GMAC)")
        # The counter inside f(CtoS) is not checked against the enclosing
        # response's: the server computes it first, and the fresh CtoS already
        # makes a replay useless.
        try:
            _core.hls_gmac_verify(self.server_system_title, self._ek, self._ak, ctos, response)
        except _core.AuthenticationError as exc:
            raise SecurityFailure(f"the meter failed HLS authentication (f(CtoS)): {exc}") from exc
        except _core.SecurityError as exc:
            raise SecurityFailure(f"malformed f(CtoS) from the meter: {exc}") from exc

    def flush(self) -> None:
        self.store.flush()

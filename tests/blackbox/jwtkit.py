"""jwtkit.py -- keys and tokens for the auth tests, made by the tests themselves.

RSA 2048 and EC P-256 keys come from the openssl command line; JWTs are built and signed here
with the standard library (hmac for HS256) and `openssl dgst -sign` (RS256, ES256; the DER
ECDSA signature is turned into the raw r||s that JWS uses). JWKS documents (RFC 7517) are
built from the keys' public numbers.
"""

import base64
import hashlib
import hmac
import json
import os
import subprocess
import time


def b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _openssl(*args, data=None) -> bytes:
    p = subprocess.run(["openssl"] + list(args), input=data, capture_output=True, timeout=30)
    assert p.returncode == 0, "openssl %s: %s" % (" ".join(args), p.stderr.decode())
    return p.stdout


class Keys:
    """An RSA key, an EC P-256 key and an HS256 secret in 'workdir', with their JWKS."""

    def __init__(self, workdir: str, prefix: str = ""):
        self.rsa_pem = os.path.join(workdir, prefix + "rsa.pem")
        self.ec_pem = os.path.join(workdir, prefix + "ec.pem")
        _openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048",
                 "-out", self.rsa_pem)
        _openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
                 "-out", self.ec_pem)
        self.secret = os.urandom(32)
        self.rsa_public_pem = _openssl("pkey", "-in", self.rsa_pem, "-pubout")
        mod = _openssl("rsa", "-in", self.rsa_pem, "-noout", "-modulus").decode()
        self.n = bytes.fromhex(mod.strip().split("=", 1)[1])
        der = _openssl("pkey", "-in", self.ec_pem, "-pubout", "-outform", "DER")
        point = der[-65:]
        assert point[0] == 4
        self.x, self.y = point[1:33], point[33:]

    def jwk_rsa(self, kid="rsa1"):
        return {"kty": "RSA", "kid": kid, "use": "sig", "n": b64u(self.n), "e": b64u(b"\x01\x00\x01")}

    def jwk_ec(self, kid="ec1"):
        return {"kty": "EC", "kid": kid, "crv": "P-256", "x": b64u(self.x), "y": b64u(self.y)}

    def jwk_oct(self, kid="hs1"):
        return {"kty": "oct", "kid": kid, "k": b64u(self.secret)}

    def jwks(self):
        return {"keys": [self.jwk_rsa(), self.jwk_ec(), self.jwk_oct()]}


def _der_to_raw(sig: bytes) -> bytes:
    """ECDSA-Sig-Value (SEQUENCE of two INTEGERs) to the 64-byte r||s of JWS ES256."""
    assert sig[0] == 0x30
    i = 2 if sig[1] < 0x80 else 2 + (sig[1] & 0x7F)
    out = b""
    for _ in range(2):
        assert sig[i] == 0x02
        n = sig[i + 1]
        v = sig[i + 2:i + 2 + n].lstrip(b"\x00")
        out += v.rjust(32, b"\x00")
        i += 2 + n
    return out


def token(keys: Keys, alg: str, claims: dict, kid=None, header=None, hs_key: bytes = None) -> str:
    """A signed JWS compact token. 'kid' defaults to the key of 'alg' in Keys.jwks();
    'header' replaces the whole header; 'hs_key' signs an HS256 token with other bytes."""
    if header is None:
        header = {"alg": alg, "typ": "JWT"}
        default_kid = {"RS256": "rsa1", "ES256": "ec1", "HS256": "hs1"}.get(alg)
        k = kid if kid is not None else default_kid
        if k:
            header["kid"] = k
    signing = (b64u(json.dumps(header, separators=(",", ":")).encode()) + "." +
               b64u(json.dumps(claims, separators=(",", ":")).encode()))
    data = signing.encode()
    if alg == "none":
        sig = b""
    elif alg == "HS256":
        sig = hmac.new(hs_key if hs_key is not None else keys.secret, data, hashlib.sha256).digest()
    elif alg == "RS256":
        sig = _openssl("dgst", "-sha256", "-sign", keys.rsa_pem, data=data)
    elif alg == "ES256":
        sig = _der_to_raw(_openssl("dgst", "-sha256", "-sign", keys.ec_pem, data=data))
    else:
        raise ValueError(alg)
    return signing + "." + b64u(sig)


def claims(**kw) -> dict:
    """Claims valid now for the tests' issuer and audience, with 'kw' on top."""
    now = int(time.time())
    c = {"iss": "https://issuer.test", "aud": "fanout-test", "sub": "alice", "iat": now - 10,
         "nbf": now - 10, "exp": now + 600, "scope": "read write"}
    c.update(kw)
    return {k: v for k, v in c.items() if v is not None}


def sha256_hex(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()

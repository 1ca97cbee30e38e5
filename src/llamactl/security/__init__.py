"""Security: password hashes, JWTs, roles, inference API keys, rate limiting.

No cryptography is written here: PyJWT signs tokens, argon2-cffi hashes passwords, hmac and
hashlib hash API keys.
"""

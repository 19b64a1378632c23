"""
The controller's side of end-to-end encryption, done with the C{openssl}
command, never with bwscd's code: content encrypted with a new AES-256 key,
that key wrapped with RSA-OAEP in a key object.
"""

import base64
import json
import subprocess


def openssl(*arguments: str, input: bytes | None = None) -> bytes:
    return subprocess.run(["openssl", *arguments], input=input, capture_output=True,
                          check=True).stdout


def encryptAsTheController(plaintext: str, content: str, keyObject: str,
                           publicKey: str, keyId: str | None, nested=False) -> None:
    """
    Encrypt C{plaintext} to C{content} as the controller does, with a new
    AES-256 key wrapped with RSA-OAEP in the key object.
    """
    key = openssl("rand", "32")
    iv = openssl("rand", "16")
    openssl("enc", "-aes-256-cbc", "-K", key.hex(), "-iv", iv.hex(),
            "-in", plaintext, "-out", content)
    wrapped = openssl("pkeyutl", "-encrypt", "-pubin", "-inkey", publicKey,
                      "-pkeyopt", "rsa_padding_mode:oaep", input=key)
    encryptedKey = base64.b64encode(wrapped).decode()
    document = {"ContentEncryptionIV": base64.b64encode(iv).decode()}
    if nested:
        document["WrappedContentKey"] = {"KeyId": keyId, "EncryptedKey": encryptedKey,
                                         "Algorithm": "RSA-OAEP"}
    else:
        document["EncryptedKey"] = encryptedKey
        if keyId is not None:
            document["PublicKeyId"] = keyId
    with open(keyObject, "w") as f:
        json.dump(document, f, indent=2)

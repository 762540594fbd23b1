"""A plain (not async) authenticate that blocks, as one calling an identity provider synchronously would."""

import time

from langgraph_sdk import Auth

auth = Auth()


@auth.authenticate
def authenticate(authorization: str | None) -> str:
    if authorization == "slow":
        time.sleep(1.0)
    return authorization or "nobody"

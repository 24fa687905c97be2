"""schemathesis hooks for warden's schema test.

Generated requests must not act on the admin account that makes them
(resetting its own secret would end the run's authentication), so path
parameters naming it are filtered out. Everything else is fair game.
"""
import os

import schemathesis

CALLER = {os.environ.get("WARDEN_FUZZ_CALLER_ID", ""), os.environ.get("WARDEN_FUZZ_CALLER_CLIENT_ID", "")}


@schemathesis.hook
def filter_path_parameters(ctx, path_parameters):
    return not path_parameters or path_parameters.get("id") not in CALLER

"""Code that runs inside the sandbox (copied into the image): the harness and its wire format."""

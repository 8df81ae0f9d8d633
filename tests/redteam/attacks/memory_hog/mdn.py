# Attack: allocate far beyond the sandbox's memory limit during training, touching every page.
def fit(x, y, *, seed, max_seconds):
    hoard = []
    while True:
        block = bytearray(256 * 2**20)
        for i in range(0, len(block), 4096):
            block[i] = 1
        hoard.append(block)

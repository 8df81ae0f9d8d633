# Attack: allocate far beyond the sandbox's memory limit during training.
def fit(x, y, *, seed, max_seconds):
    hoard = []
    while True:
        hoard.append(bytearray(256 * 2**20))
        for i in range(0, len(hoard[-1]), 4096):
            hoard[-1][i] = 1  # touch every page so it is really resident

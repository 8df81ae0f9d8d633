# Attack: never finish importing, so the worker waits forever.
while True:
    pass

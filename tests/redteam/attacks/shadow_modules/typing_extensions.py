# Attack: a module named like one the harness or Python loads (typing_extensions), to run code before or instead of it.
import os

print("SHADOW EXECUTED typing_extensions")
os._exit(3)

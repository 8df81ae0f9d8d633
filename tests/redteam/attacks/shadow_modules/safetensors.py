# Attack: a module named like one the harness or Python loads (safetensors), to run code before or instead of it.
import os

print("SHADOW EXECUTED safetensors")
os._exit(3)

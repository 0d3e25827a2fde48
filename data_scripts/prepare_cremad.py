"""Prepare the CREMA-D cache: the same as `mmlesson data prepare cremad ...` (run with --help for every option).

    python data_scripts/prepare_cremad.py --raw RAW --root ROOT            # an existing AudioWAV/ + VideoFlash/ copy
    python data_scripts/prepare_cremad.py --download --raw RAW --root ROOT # fetch the official media first
"""
import sys

from mmlesson.cli import main

if __name__ == "__main__":
    sys.exit(main(["data", "prepare", "cremad", *sys.argv[1:]]))

"""Prepare the Kinetics-Sounds cache: the same as `mmlesson data prepare kinetics_sounds ...` (run with --help for every option).

    python data_scripts/prepare_ks.py --raw RAW --root ROOT
"""
import sys

from mmlesson.cli import main

if __name__ == "__main__":
    sys.exit(main(["data", "prepare", "kinetics_sounds", *sys.argv[1:]]))

"""Prepare the AVE cache: the same as `mmlesson data prepare ave ...` (run with --help for every option).

    python data_scripts/prepare_ave.py --raw RAW --root ROOT
"""
import sys

from mmlesson.cli import main

if __name__ == "__main__":
    sys.exit(main(["data", "prepare", "ave", *sys.argv[1:]]))

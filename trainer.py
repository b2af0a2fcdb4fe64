"""The command line: pretrain, evaluate and attack digit models; make a shifted pool and simulate DADC on it.

    python trainer.py pretrain --arch cnn --out models/base.safetensors
    python trainer.py evaluate --checkpoint models/base.safetensors --attack pgd
    python trainer.py make-pool --out pool && python trainer.py simulate --pool pool --rounds 5
    HF_TOKEN=... python trainer.py rounds --dataset-repo user/outwit-data --model-repo user/outwit-model

`python trainer.py <command> --help` lists each command's options with their defaults. The commands live in
`outwit/cli.py`; nothing imports this file.
"""
import sys

from outwit.cli import main

if __name__ == "__main__":
    sys.exit(main())

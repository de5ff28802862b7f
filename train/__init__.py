"""ssl4rl_train: GRPO training and evaluation on ssl4rl datasets (this folder, installed as `ssl4rl_train`).

The scripts `train/grpo.py`, `train/evaluate.py` and `train/synthetic_qwen.py` run as documented
(`accelerate launch train/grpo.py ...`); their modules import as `ssl4rl_train.grpo` and so on.
"""

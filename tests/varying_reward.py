"""A reward that varies between completions, so a random tiny model gets a non-zero GRPO gradient.

It scores token ids, so it does not depend on what the random model's bytes decode to.
"""


def token_sum_reward(completions, completion_ids, **kwargs):
    return [(sum(ids) % 97) / 97.0 for ids in completion_ids]

"""The collection loop: the example store and the one saving path, who a visitor is, reviews, one round, the
training-set policy, the retrain worker, the record of rounds and the standings. No Gradio, no Hub."""

// Host trainer.

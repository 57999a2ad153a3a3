"""How the two latent branches are optimised: the phases of each strategy (:mod:`.schedule`)
and the optimisation itself (:mod:`.optimisation`)."""

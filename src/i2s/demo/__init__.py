"""The shipped ``demo`` model's training: the DigiFace DCGAN teacher (:mod:`.teacher`), the
small discriminator (:mod:`.discriminator`) and ``i2s train-demo`` (:mod:`.train`)."""

"""AlexNet (Krizhevsky, Sutskever, Hinton 2012): the two-tower network and its experiments."""

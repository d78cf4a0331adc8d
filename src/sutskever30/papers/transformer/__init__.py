"""The Transformer (Vaswani et al. 2017): encoder–decoder, copy, reversal and Multi30k."""

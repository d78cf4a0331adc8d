"""Identity Mappings in Deep Residual Networks (He et al. 2016): ResNet v2."""

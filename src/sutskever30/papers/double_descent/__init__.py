"""Double descent (Belkin et al. 2019; Nakkiran et al. 2019): random-features least squares
and small networks through the interpolation threshold."""

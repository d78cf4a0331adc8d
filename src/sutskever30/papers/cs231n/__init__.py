"""CS231n: Convolutional Neural Networks for Visual Recognition (Stanford course notes and
assignments). Karpathy, Johnson, Fei-Fei, 2016. https://cs231n.github.io/

The idea: build image classifiers from first principles, in NumPy, with every gradient
derived by hand as a forward/backward pair of layers and verified against numeric
gradients; then see, on CIFAR-10, that a nearest-neighbour rule on pixels is weak, a
two-layer network is better, and a convolutional network is better still.

Organized like the assignments (NumPy only; none of these modules imports torch):
``knn.py`` (vectorized L2 distances, voting, cross-validation), ``linear.py`` (SVM and
softmax losses), ``layers.py`` (affine, ReLU, conv via im2col, max-pool, batchnorm,
dropout, losses), ``solver.py`` (SGD, momentum, RMSProp, Adam; the Solver),
``gradcheck.py`` (centered differences, relative error), ``nets.py`` (TwoLayerNet,
ThreeLayerConvNet). Key equations are in each module's docstring:
softmax ``L_i = -log(e^{s_{y_i}} / Σ_j e^{s_j})``;
SVM ``L_i = Σ_{j≠y_i} max(0, s_j - s_{y_i} + 1)``;
convolution ``out = W_row · im2col(x) + b``;
batchnorm ``y = γ (x - μ_B) / sqrt(σ²_B + ε) + β``;
relative error ``|a - n| / max(|a| + |n|, 1e-8)``.

Deviations from the course (README: Deviations):
- the networks train on the same 5,000 CIFAR-10 images as kNN (the assignments: 49,000);
- inputs standardized (mean image subtracted, divided by one pixel std);
- the quick convnet has 16 filters of 5×5 (the assignment: 32 of 7×7);
- Adam with a learning rate chosen on validation for both networks;
- numeric gradients evaluate the forward pass in extended precision (``np.longdouble``) so
  that their round-off does not dominate the relative error of a float64 backward pass.
"""

"""What a trained network says: predictions (with test-time augmentation), reports, figures, Grad-CAM, summaries."""

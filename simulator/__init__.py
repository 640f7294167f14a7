"""simulator: the desktop simulator (`glasses-sim`): webcam/video/3D-world sources and a HUD."""

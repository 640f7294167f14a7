"""Re-create tests/assets/bikes_frames/ from bikes.mp4 (every 5th frame, 128 px high, JPEG q90).

.venv/bin/python tests/assets/extract_frames.py
"""

from pathlib import Path

import cv2

HERE = Path(__file__).parent
cap = cv2.VideoCapture(str(HERE / "bikes.mp4"))
out = HERE / "bikes_frames"
out.mkdir(exist_ok=True)
i = 0
while True:
    ok, frame = cap.read()
    if not ok:
        break
    if i % 5 == 0:
        h, w = frame.shape[:2]
        small = cv2.resize(frame, (round(w * 128 / h), 128), interpolation=cv2.INTER_AREA)
        cv2.imwrite(str(out / f"frame_{i:03d}.jpg"), small, [cv2.IMWRITE_JPEG_QUALITY, 90])
    i += 1

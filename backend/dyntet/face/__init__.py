"""Preprocessing real footage into a dataset folder: face tracking, camera, landmark face model, masks.

Entry point: :func:`dyntet.face.preprocess.preprocess` (``dyntet preprocess`` on the command line).
One idea per module:

``tracking``     MediaPipe face detection (where the subject is) and face mesh (478 landmarks per frame)
``topology``     the face mesh's 898 triangles, recovered from MediaPipe's edge set; vertex normals
``align``        weighted similarity / generalised Procrustes alignment
``face_model``   pose-normalised landmark shapes → mean + PCA expression basis, α per frame
``camera_fit``   focal length from face rigidity; robust per-frame head pose by reprojection
``smoothing``    zero-lag pose smoothing and the jitter measure
``crop``         the clip's fixed square crop and the intrinsics it implies
``masks``        head / torso / background labels and the background plate
``report``       ``report.json`` numbers, warnings and the contact sheet
``options``      ``PreprocessOptions`` (with ``from_dict`` for JSON) and ``PreprocessError``
``runtime``      progress throttling, cancellation and the ``.cache`` folder of a run
``track_stage``  stages 2–3: locate the subject, track every frame (chunked, resumable)
``fit_stage``    stage 4: focal, face model, poses, smoothing, crop
``write_stage``  stages 5–8: frames and masks, background, audio, report
``preprocess``   the cached, resumable, cancellable pipeline that ties them together
"""

"""Preprocessing real footage: face tracking, camera, landmark face model, masks."""

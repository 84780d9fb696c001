"""Named expression controls (ARKit names) measured from tracked landmarks, and their map to α."""

"""Media input shared by metrics and families: audio and its features (Wav2Lip's mel,
syncnet's MFCC), video and frame folders, and face boxes."""
from .audio import load_audio, mel_windows, syncnet_mfcc, wav2lip_mel
from .faces import crop_faces, face_boxes
from .video import read_frames_folder, read_video, write_video

__all__ = ["crop_faces", "face_boxes", "load_audio", "mel_windows", "read_frames_folder",
           "read_video", "syncnet_mfcc", "wav2lip_mel", "write_video"]

"""Data input for the quality metrics: audio and its features (Wav2Lip's mel, syncnet's
MFCC), video and frame folders, face boxes, and the dataset layouts of the lip-sync
benchmark (LRS2/LRS3 preprocessed clips, video folders, Wav2Lip's pair lists)."""
from .audio import load_audio, mel_windows, syncnet_mfcc, wav2lip_mel
from .datasets import Item, load_item, lrs_items, pair_items, video_folder_items
from .faces import crop_faces, face_boxes
from .video import read_frames_folder, read_video, write_video

__all__ = ["Item", "crop_faces", "face_boxes", "load_audio", "load_item", "lrs_items",
           "mel_windows", "pair_items", "read_frames_folder", "read_video", "syncnet_mfcc",
           "video_folder_items", "wav2lip_mel", "write_video"]

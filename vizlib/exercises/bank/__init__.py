"""The instructor's tests: one module per chapter, each registering its exercises.

Every module here is imported when an exercise is looked up, so a new chapter only adds
a module. Expected values come from references (``vizlib``, ``torchvision``,
``pycocotools``) or from hand-computed numbers, never from the reader's notebook.
"""

"""A toy fourth task family, defined only here, that proves a family is a plug-in: tone-pitch
classification with its own data format, datamodule, model, loss, task, report and configs."""

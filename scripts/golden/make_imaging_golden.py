#!/usr/bin/env python3
"""Golden values for MedicalImaging tests, from nibabel, pydicom and scipy.

Run from the repository root:  .venv-ref/bin/python scripts/golden/make_imaging_golden.py
Reads ../shared/data (never copied into the repository) and writes Tests/MedicalImagingTests/Golden/.

Conventions the Swift side shares (see Sources/MedicalImaging/Volume.swift):
- shape is voxel counts along i, j, k; for DICOM i = columns, j = rows, k = slices sorted by
  ImagePositionPatient projected on the slice normal.
- affine maps (i, j, k, 1) to RAS+ mm (nibabel's convention); DICOM LPS coordinates have x and y negated.
- orientation is nibabel.orientations.aff2axcodes(affine).
- hu_* are after scl_slope/scl_inter (nibabel get_fdata) or RescaleSlope/RescaleIntercept (pydicom, applied once).
"""
import glob
import json
import os
import sys

import nibabel as nib
import numpy as np
import pydicom
import scipy
import scipy.ndimage

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DATA = os.path.normpath(os.path.join(ROOT, "..", "shared", "data"))
OUT = os.path.join(ROOT, "Tests", "MedicalImagingTests", "Golden")


def versions():
    import pylibjpeg
    try:
        import openjpeg
        oj = openjpeg.__version__
    except Exception:  # pragma: no cover
        oj = "?"
    return {"nibabel": nib.__version__, "pydicom": pydicom.__version__, "numpy": np.__version__,
            "scipy": scipy.__version__, "pylibjpeg": pylibjpeg.__version__, "pylibjpeg-openjpeg": oj,
            "python": sys.version.split()[0]}


def stats(values):
    v = np.asarray(values, dtype=np.float64)
    return {"hu_min": float(v.min()), "hu_max": float(v.max()), "hu_mean": float(v.mean())}


def nifti_entry(path):
    img = nib.load(path)
    data = img.get_fdata(dtype=np.float64)
    entry = {"path": os.path.relpath(path, DATA), "format": "nifti", "shape": [int(x) for x in img.shape[:3]],
             "spacing_mm": [float(z) for z in img.header.get_zooms()[:3]],
             "orientation": "".join(nib.orientations.aff2axcodes(img.affine)),
             "dtype": img.get_data_dtype().name, "affine": img.affine.tolist()}
    entry.update(stats(data))
    return entry


def dicom_geometry(datasets):
    iop = np.array(datasets[0].ImageOrientationPatient, dtype=np.float64)
    row, col = iop[:3], iop[3:]
    normal = np.cross(row, col)
    datasets = sorted(datasets, key=lambda d: float(np.dot(np.array(d.ImagePositionPatient, dtype=np.float64), normal)))
    ipp = [np.array(d.ImagePositionPatient, dtype=np.float64) for d in datasets]
    ps = [float(x) for x in datasets[0].PixelSpacing]
    n = len(datasets)
    if n > 1:
        step = (ipp[-1] - ipp[0]) / (n - 1)
    else:
        step = normal * float(datasets[0].get("SpacingBetweenSlices", datasets[0].get("SliceThickness", 1.0)))
    lps = np.eye(4)
    lps[:3, 0] = row * ps[1]
    lps[:3, 1] = col * ps[0]
    lps[:3, 2] = step
    lps[:3, 3] = ipp[0]
    ras = np.diag([-1.0, -1.0, 1.0, 1.0]) @ lps
    return datasets, ras, [ps[1], ps[0], float(np.linalg.norm(step))], normal, ipp


def hu(ds):
    arr = ds.pixel_array.astype(np.float64)
    slope = float(ds.get("RescaleSlope", 1.0))
    intercept = float(ds.get("RescaleIntercept", 0.0))
    return arr * slope + intercept


def dicom_series_entry(folder, files):
    datasets = [pydicom.dcmread(f) for f in files]
    datasets, ras, spacing, normal, ipp = dicom_geometry(datasets)
    slices = [hu(d) for d in datasets]  # each (rows, columns)
    volume = np.stack(slices, axis=0)  # (k, j, i)
    distances = [float(np.dot(p, normal)) for p in ipp]
    entry = {"path": os.path.relpath(folder, DATA), "format": "dicom",
             "shape": [int(datasets[0].Columns), int(datasets[0].Rows), len(datasets)],
             "spacing_mm": spacing, "orientation": "".join(nib.orientations.aff2axcodes(ras)),
             "dtype": datasets[0].pixel_array.dtype.name, "affine": ras.tolist(),
             "transfer_syntax": str(datasets[0].file_meta.TransferSyntaxUID.name),
             "slice_positions_mm": distances,
             "gaps_mm": [distances[n + 1] - distances[n] for n in range(len(distances) - 1)]}
    entry.update(stats(volume))
    # Per-slice checksums of the HU values (sum and sum of squares) for exactness checks.
    entry["slice_sums"] = [float(s.sum()) for s in slices]
    entry["slice_sums_of_squares"] = [float((s * s).sum()) for s in slices]
    identical = []
    for a in range(len(slices)):
        for b in range(a + 1, len(slices)):
            if np.array_equal(slices[a], slices[b]):
                identical.append([a, b])
    entry["identical_slice_pairs"] = identical
    return entry


def multiframe_entry(path):
    ds = pydicom.dcmread(path)
    arr = ds.pixel_array.astype(np.float64)  # (frames, rows, columns)
    slope = float(ds.get("RescaleSlope", 1.0))
    intercept = float(ds.get("RescaleIntercept", 0.0))
    arr = arr * slope + intercept
    # This object carries no ImageOrientationPatient / ImagePositionPatient / PixelSpacing and no functional
    # groups: identity LPS orientation, origin 0, 1 mm pixels and SpacingBetweenSlices between frames.
    between = float(ds.get("SpacingBetweenSlices", ds.get("SliceThickness", 1.0)))
    ps = [float(x) for x in ds.get("PixelSpacing", [1.0, 1.0])]
    lps = np.diag([ps[1], ps[0], between, 1.0])
    ras = np.diag([-1.0, -1.0, 1.0, 1.0]) @ lps
    entry = {"path": os.path.relpath(path, DATA), "format": "dicom",
             "shape": [int(ds.Columns), int(ds.Rows), int(ds.NumberOfFrames)],
             "spacing_mm": [ps[1], ps[0], between], "orientation": "".join(nib.orientations.aff2axcodes(ras)),
             "dtype": ds.pixel_array.dtype.name, "affine": ras.tolist()}
    entry.update(stats(arr))
    return entry


def resample_reference():
    """Trilinear resampling reference: scipy.ndimage.affine_transform, order 1, mode 'nearest'.

    Output voxel o maps to input coordinate o * new_spacing / old_spacing along each axis (voxel 0 stays in
    place); the output shape is round(shape * old_spacing / new_spacing)."""
    img = nib.load(os.path.join(DATA, "ct", "ts_chest_cta_full_3mm.nii.gz"))
    data = img.get_fdata(dtype=np.float64)
    old = np.array(img.header.get_zooms()[:3], dtype=np.float64)
    cases = []
    for new in ([1.5, 1.5, 3.0], [4.0, 2.5, 5.0]):
        new = np.array(new)
        shape = [max(1, int(np.floor(n * o / s + 0.5))) for n, o, s in zip(data.shape, old, new)]
        ratio = new / old
        out = scipy.ndimage.affine_transform(data, np.diag(ratio), offset=0.0, output_shape=shape, order=1,
                                             mode="nearest", prefilter=False)
        rng = np.random.default_rng(0)
        idx = [[int(rng.integers(0, s)) for s in shape] for _ in range(200)]
        cases.append({"source": "ct/ts_chest_cta_full_3mm.nii.gz", "target_spacing_mm": new.tolist(),
                      "shape": shape, "mean": float(out.mean()), "min": float(out.min()), "max": float(out.max()),
                      "samples": [{"ijk": i, "value": float(out[tuple(i)])} for i in idx]})
    return cases


def rotation(angle_deg, axis):
    a = np.deg2rad(angle_deg)
    c, s = np.cos(a), np.sin(a)
    r = np.eye(3)
    i, j = [(1, 2), (0, 2), (0, 1)][axis]
    r[i, i], r[i, j], r[j, i], r[j, j] = c, -s, s, c
    return r


def synthetic_fixtures():
    """Tiny synthetic files (made here, committed as test fixtures) for paths the real data does not cover:
    NIfTI-2 big-endian, a qform-only NIfTI-1 with scl_slope/scl_inter, and a DICOM object without pixel data."""
    fixtures = []
    rng = np.random.default_rng(3)
    # NIfTI-2, big-endian float64, sform with a rotation.
    data = rng.normal(size=(4, 3, 2)) * 100
    aff = np.eye(4)
    aff[:3, :3] = rotation(30, 2) @ np.diag([0.7, 0.8, 2.5])
    aff[:3, 3] = [10, -20, 30]
    hdr = nib.Nifti2Header(endianness=">")
    img = nib.Nifti2Image(data.astype(">f8"), aff, header=hdr)
    img.set_data_dtype(">f8")
    path = os.path.join(OUT, "tiny_nifti2_be.nii")
    nib.save(img, path)
    back = nib.load(path)
    assert back.header.endianness == ">", back.header.endianness
    fixtures.append({"file": "tiny_nifti2_be.nii", "shape": list(back.shape),
                     "spacing_mm": [float(z) for z in back.header.get_zooms()[:3]],
                     "orientation": "".join(nib.orientations.aff2axcodes(back.affine)),
                     "dtype": back.get_data_dtype().name, "affine": back.affine.tolist(),
                     "values_fortran_order": back.get_fdata().ravel(order="F").tolist()})
    # NIfTI-1, qform only (sform_code 0), int16 with scl_slope 0.5 and scl_inter 10, qfac -1 (left-handed).
    data = rng.integers(-300, 300, size=(5, 4, 3)).astype(np.int16)
    aff = np.eye(4)
    aff[:3, :3] = rotation(20, 0) @ np.diag([1.2, 1.1, -3.0])
    aff[:3, 3] = [-5, 7, 11]
    img = nib.Nifti1Image(data, None)
    img.set_qform(aff, code=1)
    img.set_sform(None, code=0)
    img.header.set_slope_inter(0.5, 10.0)
    path = os.path.join(OUT, "tiny_qform_scaled.nii.gz")
    nib.save(img, path)
    back = nib.load(path)
    assert int(back.header["sform_code"]) == 0 and int(back.header["qform_code"]) == 1
    fixtures.append({"file": "tiny_qform_scaled.nii.gz", "shape": list(back.shape),
                     "spacing_mm": [float(z) for z in back.header.get_zooms()[:3]],
                     "orientation": "".join(nib.orientations.aff2axcodes(back.affine)),
                     "dtype": back.get_data_dtype().name, "affine": back.affine.tolist(),
                     "values_fortran_order": back.get_fdata().ravel(order="F").tolist()})
    # A DICOM object without pixel data (Basic Text SR), no patient data.
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.88.11"
    meta.MediaStorageSOPInstanceUID = generate_uid(entropy_srcs=["greenrfm-sr"])
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = "SR"
    ds.SeriesInstanceUID = generate_uid(entropy_srcs=["greenrfm-sr-series"])
    ds.save_as(os.path.join(OUT, "non_image_sr.dcm"), enforce_file_format=True)
    # Synthetic CT slices (a phantom, no patient) compressed with RLE Lossless and JPEG 2000 Lossless by pydicom,
    # signed 16-bit with RescaleIntercept -1024: the Swift reader must give pydicom's HU exactly.
    from pydicom.uid import RLELossless, JPEG2000Lossless, CTImageStorage
    yy, xx = np.mgrid[0:48, 0:40]
    phantom = (np.where((yy - 24) ** 2 + (xx - 20) ** 2 < 300, 1000 + 3 * xx, 0) + rng.integers(0, 40, size=(48, 40)) - 200)
    for name, syntax in (("synthetic_ct_rle.dcm", RLELossless), ("synthetic_ct_j2k.dcm", JPEG2000Lossless)):
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = CTImageStorage
        meta.MediaStorageSOPInstanceUID = generate_uid(entropy_srcs=[name])
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ct = Dataset()
        ct.file_meta = meta
        ct.SOPClassUID = CTImageStorage
        ct.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
        ct.SeriesInstanceUID = generate_uid(entropy_srcs=[name, "series"])
        ct.Modality = "CT"
        ct.Rows, ct.Columns = phantom.shape
        ct.SamplesPerPixel = 1
        ct.PhotometricInterpretation = "MONOCHROME2"
        ct.BitsAllocated, ct.BitsStored, ct.HighBit, ct.PixelRepresentation = 16, 16, 15, 1
        ct.RescaleSlope, ct.RescaleIntercept = "1", "-1024"
        ct.PixelSpacing = ["0.7", "0.6"]
        ct.ImageOrientationPatient = ["1", "0", "0", "0", "1", "0"]
        ct.ImagePositionPatient = ["-10", "-20", "30"]
        ct.SliceThickness = "2.5"
        ct.PixelData = phantom.astype("<i2").tobytes()
        ct.compress(syntax)
        ct.save_as(os.path.join(OUT, name), enforce_file_format=True)
        back = pydicom.dcmread(os.path.join(OUT, name))
        assert back.file_meta.TransferSyntaxUID == syntax
        values = back.pixel_array.astype(np.float64) * 1 - 1024
        assert np.array_equal(values, phantom - 1024.0)
        fixtures.append({"file": name, "shape": [int(back.Columns), int(back.Rows), 1],
                         "transfer_syntax": str(syntax.name), "dtype": back.pixel_array.dtype.name,
                         "values_fortran_order": values.T.ravel(order="F").tolist()})
    return fixtures


def main():
    os.makedirs(OUT, exist_ok=True)
    files = []
    for path in sorted(glob.glob(os.path.join(DATA, "ct", "*.nii*")) + glob.glob(os.path.join(DATA, "mri", "*.nii*"))):
        files.append(nifti_entry(path))
    files.append(multiframe_entry(os.path.join(DATA, "mri", "pydicom_emri_small_multiframe.dcm")))
    for folder in sorted(glob.glob(os.path.join(DATA, "dicom", "*"))):
        paths = sorted(p for p in glob.glob(os.path.join(folder, "*")) if os.path.isfile(p))
        entry = dicom_series_entry(folder, paths)
        files.append(entry)
        if len(paths) > 1:
            for p in paths[:1]:
                files.append(dicom_series_entry(p, [p]))
    golden = {"made_by": "scripts/golden/make_imaging_golden.py", "versions": versions(), "volumes": files,
              "resample": resample_reference(),
              "synthetic": synthetic_fixtures()}
    with open(os.path.join(OUT, "imaging_golden.json"), "w") as f:
        json.dump(golden, f, indent=1)
    print(f"wrote {len(files)} volumes to {OUT}/imaging_golden.json")


if __name__ == "__main__":
    main()

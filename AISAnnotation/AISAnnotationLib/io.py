"""Reading and writing images and sidecars; every write is atomic.

Atomic = written to a temporary file in the destination folder, flushed, then
renamed over the target (``os.replace``), so a crash leaves either the old file
or the new one, never a half-written one.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import tempfile
import threading
from pathlib import Path
from typing import Any, Iterable, Optional, Union

import numpy as np

from .errors import ImageReadError
from .image import Image

PathLike = Union[str, "os.PathLike[str]"]

NIFTI_SUFFIXES = (".nii.gz", ".nii")
ITK_SUFFIXES = (".mha", ".mhd", ".nrrd", ".nhdr")
IMAGE_SUFFIXES = NIFTI_SUFFIXES + ITK_SUFFIXES
_LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])


def image_suffix(path: PathLike) -> str:
    """The image extension of ``path`` ('.nii.gz', '.mha', …) or '' if none is known."""
    name = Path(path).name.lower()
    for suf in IMAGE_SUFFIXES:
        if name.endswith(suf):
            return suf
    return ""


def strip_image_suffix(path: PathLike) -> str:
    name = Path(path).name
    suf = image_suffix(name)
    return name[: len(name) - len(suf)] if suf else name


# --------------------------------------------------------------------------- reading
def read_image(path: PathLike, name: str = "", with_sidecar: bool = True) -> Image:
    """Read a NIfTI / MetaImage / NRRD file into an :class:`Image` (affine in RAS).

    The JSON sidecar next to the file (same stem, ``.json``) is read into ``meta``
    when present. A 4D file holding a single volume is returned as the 3D image it is.
    Raises :class:`ImageReadError` naming the file and the cause.
    """
    p = Path(path)
    if not p.is_file():
        try:
            p.stat()
        except FileNotFoundError:
            raise ImageReadError(f"{p}: file not found") from None
        except OSError as exc:  # symlink loop, name too long, permission denied …
            raise ImageReadError(f"{p}: cannot be opened ({exc.strerror or exc})") from None
        raise ImageReadError(f"{p}: not a regular file")
    suf = image_suffix(p)
    if not suf:
        raise ImageReadError(
            f"{p}: not a supported image file (expected one of {', '.join(IMAGE_SUFFIXES)})"
        )
    if suf in NIFTI_SUFFIXES:
        array, affine = _read_nifti(p)
    else:
        array, affine = _read_itk(p)
    if array.ndim == 4 and array.shape[3] == 1:
        array = array[..., 0]  # a 4D file holding one volume (SOOP's trace and ADC) is a 3D image
    if array.ndim not in (3, 4):
        if array.ndim == 2:
            array = array[:, :, None]
        else:
            raise ImageReadError(f"{p}: expected a 3D or 4D image, got {array.ndim} dimensions")
    meta: dict[str, Any] = {}
    if with_sidecar:
        side = p.with_name(strip_image_suffix(p) + ".json")
        if side.is_file():
            meta = read_json(side)
    return Image(array=array, affine=affine, meta=meta, name=name, path=p)


def _read_nifti(p: Path) -> tuple[np.ndarray, np.ndarray]:
    import nibabel as nib

    try:
        img = nib.load(str(p))
    except Exception as exc:  # nibabel raises many kinds of errors for bad headers
        raise ImageReadError(f"{p}: not a readable NIfTI file ({exc})") from exc
    try:
        array = np.asanyarray(img.dataobj)
        array = np.array(array)  # force full decompression now, so truncation shows here
    except Exception as exc:
        raise ImageReadError(
            f"{p}: image data could not be read; the file is truncated or corrupt ({exc})"
        ) from exc
    return array, np.asarray(img.affine, dtype=float)


def _read_itk(p: Path) -> tuple[np.ndarray, np.ndarray]:
    import SimpleITK as sitk

    try:
        img = sitk.ReadImage(str(p))
    except RuntimeError as exc:
        msg = str(exc).strip().splitlines()[-1] if str(exc).strip() else "unknown error"
        raise ImageReadError(f"{p}: not a readable image ({msg})") from exc
    return sitk_to_array_affine(img)


def sitk_to_array_affine(img: Any) -> tuple[np.ndarray, np.ndarray]:
    """SimpleITK image → ([i,j,k(,c)] array, RAS affine)."""
    import SimpleITK as sitk

    arr = sitk.GetArrayFromImage(img)
    dim = img.GetDimension()
    if dim == 2:
        arr = arr.T[:, :, None] if img.GetNumberOfComponentsPerPixel() == 1 else arr
        spacing = list(img.GetSpacing()) + [1.0]
        origin = list(img.GetOrigin()) + [0.0]
        d2 = np.array(img.GetDirection()).reshape(2, 2)
        direction = np.eye(3)
        direction[:2, :2] = d2
    else:
        if img.GetNumberOfComponentsPerPixel() > 1:  # [k,j,i,c] → [i,j,k,c]
            arr = arr.transpose(tuple(range(dim - 1, -1, -1)) + (dim,))
        else:  # [(t,)k,j,i] → [i,j,k(,t)]
            arr = arr.transpose(tuple(range(dim - 1, -1, -1)))
        spacing = list(img.GetSpacing())[:3]
        origin = list(img.GetOrigin())[:3]
        direction = np.array(img.GetDirection()).reshape(dim, dim)[:3, :3]
    lps = np.eye(4)
    lps[:3, :3] = direction * np.array(spacing)[None, :]
    lps[:3, 3] = origin
    return np.ascontiguousarray(arr), _LPS_TO_RAS @ lps


def image_to_sitk(image: Image, array: Optional[np.ndarray] = None) -> Any:
    """3D :class:`Image` → SimpleITK image in ITK's LPS physical space."""
    import SimpleITK as sitk

    arr = image.array if array is None else array
    if arr.ndim != 3:
        raise ValueError(f"image_to_sitk needs a 3D array, got shape {arr.shape}")
    out = sitk.GetImageFromArray(np.ascontiguousarray(arr.transpose(2, 1, 0)))
    lps = _LPS_TO_RAS @ image.affine
    spacing = np.sqrt((lps[:3, :3] ** 2).sum(axis=0))
    out.SetSpacing([float(s) for s in spacing])
    out.SetOrigin([float(o) for o in lps[:3, 3]])
    out.SetDirection([float(v) for v in (lps[:3, :3] / spacing[None, :]).ravel()])
    return out


def sitk_to_image(img: Any, name: str = "", meta: Optional[dict[str, Any]] = None) -> Image:
    arr, affine = sitk_to_array_affine(img)
    return Image(array=arr, affine=affine, meta=dict(meta or {}), name=name)


# --------------------------------------------------------------------------- writing
TMP_MARK = ".tmp"  # every temporary file/folder name contains ".tmp" and starts with "."
_umask_lock = threading.Lock()


def current_umask() -> int:
    """The process umask (read from /proc on Linux, else set-and-restore under a lock)."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    with _umask_lock:
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


def shared_mode(fd_or_path: Union[int, PathLike], base: int = 0o666) -> None:
    """Widen a ``mkstemp`` file (created 0600) to ``base & ~umask`` so the dataset's group can
    read what one member wrote (the umask decides, as for any file the user creates)."""
    if os.name != "posix":  # Windows: access is governed by ACLs, not mode bits
        return
    mode = base & ~current_umask()
    if isinstance(fd_or_path, int):
        os.fchmod(fd_or_path, mode)
    else:
        os.chmod(fd_or_path, mode)


def _tmp_path(target: Path) -> Path:
    suf = image_suffix(target) or "".join(target.suffixes[-1:])
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=TMP_MARK + suf, dir=target.parent)
    except OSError as exc:  # name the file the user asked for, not the temporary one
        raise OSError(exc.errno, exc.strerror, str(target)) from None
    try:
        shared_mode(fd)
    finally:
        os.close(fd)
    return Path(tmp)


def stage_dir(target: PathLike) -> Path:
    """A new empty folder next to ``target`` (same file system) to build its content in;
    publish it with :func:`replace_dir`. Mode 0777 & ~umask (``mkdtemp`` makes 0700)."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=TMP_MARK, dir=target.parent))
    except OSError as exc:  # name the folder the user asked for, not the staging one
        raise OSError(exc.errno, exc.strerror, str(target)) from None
    shared_mode(tmp, 0o777)
    return tmp


def fsync_dir(path: PathLike) -> None:
    """fsync a folder (its entries: renames, new files); a no-op where folders cannot be opened."""
    try:
        fd = os.open(str(path), os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def replace_dir(staged: PathLike, target: PathLike) -> Path:
    """Move the complete folder ``staged`` to ``target`` in one step.

    A missing ``target`` is a single ``rename``. An existing one is first renamed aside, then
    the new folder renamed in, then the old one removed: the folder at ``target`` is always
    either entirely old or entirely new, never a mix (a crash between the two renames leaves
    no ``target`` and the old folder under ``.<name>.old.….tmp/x`` for recovery).
    """
    import shutil

    staged, target = Path(staged), Path(target)
    for p in staged.rglob("*"):
        if p.is_file():
            with open(p, "rb") as fh:
                os.fsync(fh.fileno())
    fsync_dir(staged)
    old = None
    if target.exists() or target.is_symlink():
        if not target.is_dir() or target.is_symlink():
            raise FileExistsError(errno.EEXIST, "exists and is not a folder", str(target))
        old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old.", suffix=TMP_MARK, dir=target.parent))
        os.replace(target, old / "x")
    try:
        os.rename(staged, target)
    except BaseException:
        if old is not None:
            os.replace(old / "x", target)
            old.rmdir()
        raise
    fsync_dir(target.parent)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return target


def _commit(tmp: Path, target: Path) -> None:
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, target)


def _write_atomically(path: PathLike, chunks: Iterable[Any], binary: bool) -> Path:
    """Write ``chunks`` to a temp file beside ``path``, fsync, rename; nothing left behind on error."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp_path(target)
    try:
        with (open(tmp, "wb") if binary else open(tmp, "w", encoding="utf-8", newline="")) as fh:
            for chunk in chunks:
                fh.write(chunk)
        _commit(tmp, target)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise OSError(exc.errno, exc.strerror, str(target)) from exc
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return target


def atomic_write_bytes(path: PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (temp file in the same folder, then rename)."""
    return _write_atomically(path, (data,), binary=True)


def atomic_write_text(path: PathLike, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_chunks(path: PathLike, chunks: Iterable[str]) -> Path:
    """Write the UTF-8 text ``chunks`` to ``path`` as they come (never the whole text in memory),
    atomically: temp file in the same folder, fsync, rename; nothing left behind on error."""
    return _write_atomically(path, chunks, binary=False)


def write_json(path: PathLike, obj: Any) -> Path:
    """Atomic JSON write (UTF-8, indented, trailing newline)."""
    return atomic_write_text(path, json.dumps(obj, indent=2, ensure_ascii=False, default=_json_default) + "\n")


def _json_default(o: Any) -> Any:
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def read_json(path: PathLike) -> dict[str, Any]:
    p = Path(path)
    try:
        with open(p, encoding="utf-8") as fh:
            data = json.load(fh)
    except json.JSONDecodeError as exc:
        raise ImageReadError(f"{p}: invalid JSON ({exc})") from exc
    except UnicodeDecodeError as exc:
        raise ImageReadError(f"{p}: not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset "
                             f"{exc.start}); JSON files must be UTF-8") from exc
    except RecursionError as exc:
        raise ImageReadError(f"{p}: JSON nested too deeply") from exc
    except OSError as exc:
        raise ImageReadError(f"{p}: cannot be read ({exc.strerror or exc})") from exc
    if not isinstance(data, dict):
        raise ImageReadError(f"{p}: expected a JSON object, got {type(data).__name__}")
    return data


def write_nifti(image: Image, path: PathLike, dtype: Any = None) -> Path:
    """Write ``image`` as NIfTI-1 (gzip if the name ends in .gz), atomically.

    qform and sform both carry the affine (code 1, scanner space), units mm / s.
    """
    import nibabel as nib

    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    arr = image.array if dtype is None else np.asarray(image.array).astype(dtype)
    if arr.dtype == np.bool_:
        arr = arr.astype(np.uint8)
    if arr.dtype == np.float64:
        arr = arr.astype(np.float32)
    nimg = nib.Nifti1Image(np.asarray(arr), image.affine)
    nimg.set_qform(image.affine, code=1)
    nimg.set_sform(image.affine, code=1)
    nimg.header.set_xyzt_units("mm", "sec")
    tmp = _tmp_path(target)
    try:
        nib.save(nimg, str(tmp))
        _commit(tmp, target)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise OSError(exc.errno, exc.strerror, str(target)) from exc
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return target


def sha256_file(path: PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()

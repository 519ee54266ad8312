-- CreateTable
CREATE TABLE "UserImage" (
    "id" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    "userId" INTEGER NOT NULL,
    "name" TEXT NOT NULL,
    "version" INTEGER NOT NULL,
    "tag" TEXT NOT NULL,
    "hostName" TEXT NOT NULL,
    "hosts" TEXT NOT NULL,
    "imageId" TEXT,
    "state" TEXT NOT NULL,
    "sizeBytes" REAL,
    "addedBytes" REAL,
    "log" TEXT,
    "error" TEXT,
    "createdAt" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "finishedAt" DATETIME
);

-- CreateTable
CREATE TABLE "ImageBuildLock" (
    "userId" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    "imageId" INTEGER NOT NULL,
    "startedAt" DATETIME NOT NULL
);

-- CreateIndex
CREATE UNIQUE INDEX "UserImage_tag_key" ON "UserImage"("tag");

-- CreateIndex
CREATE INDEX "UserImage_userId_state_idx" ON "UserImage"("userId", "state");

-- CreateIndex
CREATE UNIQUE INDEX "UserImage_userId_name_version_key" ON "UserImage"("userId", "name", "version");

